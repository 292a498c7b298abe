"""Where training runs: one device, all local GPUs, or several workers from ``TF_CONFIG``.

``TF_CONFIG`` is the standard cluster description (``{"cluster": {"worker": [...]}, "task":
{"type": "worker", "index": 0}}``). It is checked before any training starts, because a bad
one otherwise shows up as a collective-op hang minutes later. The chief (task ``chief``, or
worker 0 when there is none) is the one worker that evaluates, exports and promotes.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

import tensorflow as tf

from streamrec.infra.core.errors import StreamrecError


@dataclass(frozen=True)
class Role:
    """This process's place in the training cluster."""

    task_type: str
    index: int
    tasks: int  # chief and workers

    @property
    def is_chief(self) -> bool:
        return self.task_type == "chief" or (self.task_type == "worker" and self.index == 0)


SINGLE = Role("worker", 0, 1)


def cluster_role(environ: Mapping[str, str] = os.environ) -> Role:
    """This process's role from ``TF_CONFIG``; a single worker without it."""
    text = environ.get("TF_CONFIG", "").strip()
    if not text:
        return SINGLE
    try:
        spec = json.loads(text)
        cluster, task = spec["cluster"], spec["task"]
        task_type, index = task["type"], int(task.get("index", 0))
    except (ValueError, KeyError, TypeError) as exc:
        raise StreamrecError(
            f"TF_CONFIG is not a cluster description ({exc!r}); expected "
            '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}}'
        ) from exc
    if task_type not in ("chief", "worker"):
        raise StreamrecError(f"TF_CONFIG task type {task_type!r}: streamrec runs chief or worker")
    addresses = cluster.get(task_type) if isinstance(cluster, dict) else None
    if not isinstance(addresses, list) or not 0 <= index < len(addresses):
        raise StreamrecError(
            f"TF_CONFIG task {task_type} {index} is not in its cluster "
            f"({len(addresses) if isinstance(addresses, list) else 0} {task_type} address(es))"
        )
    tasks = sum(len(cluster.get(kind) or []) for kind in ("chief", "worker"))
    for address in (*(cluster.get("chief") or []), *(cluster.get("worker") or [])):
        host, _, port = str(address).rpartition(":")
        if not host or not port.isdigit():
            raise StreamrecError(f"TF_CONFIG address {address!r} is not host:port")
    return Role(task_type, index, tasks)


@functools.cache  # one per process: a multi-worker strategy can only be set up once
def distribution_strategy(kind: str, role: Role) -> tf.distribute.Strategy:
    """Must run before TensorFlow executes anything else in a multi-worker process."""
    if kind == "auto":
        gpus = len(tf.config.list_physical_devices("GPU"))
        kind = "multi_worker" if role.tasks > 1 else "mirrored" if gpus > 1 else "one_device"
    if kind == "multi_worker":
        if role is SINGLE:
            raise StreamrecError(
                "training.strategy multi_worker needs TF_CONFIG describing the cluster"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if role.tasks > 1:
        raise StreamrecError(
            f"TF_CONFIG describes {role.tasks} tasks but training.strategy is {kind}; "
            "use multi_worker or auto"
        )
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()
