"""Key names of the Redis stores, on one server or spread over a Redis Cluster's slots.

A Redis Cluster runs a Lua script only if every key it touches hashes to one slot, and the
slot of a key with a hash tag (the text between its first ``{`` and the next ``}``) is the
tag's. So in cluster mode:

- each user's keys (history, watermark, filed and held claims) are tagged with the user id:
  the ledger's per-user script touches all of them in one call, and users spread over every
  node;
- item statistics and the item catalog, each updated by one script over many of its keys,
  are each tagged as a whole: each lives on one node.

On one server, names stay as they always were, so existing data keeps its meaning. Every name
starts with ``{prefix}:``, which is how a namespace is found and deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamrec.infra.contracts.feature_spec import user_history_key


@dataclass(frozen=True)
class RedisKeys:
    prefix: str
    cluster: bool

    def history(self, user_id: str) -> str:
        return user_history_key(self.prefix, self._user(user_id))

    def user(self, kind: str, user_id: str) -> str:
        """``{prefix}:{kind}:{user_id}``, the user id tagged in cluster mode."""
        return f"{self.prefix}:{kind}:{self._user(user_id)}"

    def claims(self, user_id: str) -> str:
        """What the ids of ``user_id``'s held claims follow: one server files every claim by
        its event id alone, a cluster beside the user's other keys."""
        if self.cluster:
            return f"{self.prefix}:claims:{self._user(user_id)}:"
        return f"{self.prefix}:claims:"

    def group(self, name: str) -> str:
        """The prefix of a group of keys that one script updates together: ``{prefix}`` on
        one server (as before groups existed), one hash tag per group in a cluster."""
        return f"{self.prefix}:{{{self.prefix}:{name}}}" if self.cluster else self.prefix

    def _user(self, user_id: str) -> str:
        return f"{{{user_id}}}" if self.cluster else user_id
