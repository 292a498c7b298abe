"""The last history this process read for each user, kept to serve them while Redis is down."""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict

from streamrec.infra.storage.ports.online_store import UserHistory


class RecentHistories:
    """A bounded map user -> history: the least recently read user is forgotten first."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._histories: OrderedDict[str, UserHistory] = OrderedDict()

    def remember(self, user_id: str, history: UserHistory) -> None:
        if self._capacity <= 0:
            return
        with self._lock:
            self._histories[user_id] = history
            self._histories.move_to_end(user_id)
            while len(self._histories) > self._capacity:
                self._histories.popitem(last=False)

    def recall(self, user_id: str) -> UserHistory | None:
        """The last history read for the user, or None if this process has not read one."""
        with self._lock:
            return self._histories.get(user_id)

    def latest(self, n: int) -> list[tuple[str, UserHistory]]:
        """The ``n`` users read most recently, with their histories, newest first."""
        with self._lock:
            return list(itertools.islice(reversed(self._histories.items()), n))
