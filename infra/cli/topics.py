"""``streamrec topics create``: every topic streamrec uses, made before any stage runs.

Clusters where topics are not created on first use (``auto.create.topics.enable=false``, or
clients without the right to create them) need them made by an operator, with the partitions,
replication and settings that the ``[kafka]`` section names. Creating them is idempotent: a
topic that exists is reported as it is, and left as it is.
"""

from __future__ import annotations

import argparse
import json
import sys

from streamrec.infra.core.config import Config
from streamrec.infra.storage import open_event_bus


def add_commands(commands: argparse._SubParsersAction) -> None:
    topics = commands.add_parser("topics", help="the Kafka topics streamrec uses")
    actions = topics.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser(
        "create",
        help="create every topic with [kafka] partitions, replication_factor and "
        "min_insync_replicas; existing ones are reported, not changed",
    )
    create.set_defaults(handler=_create)


def _create(args: argparse.Namespace, config: Config) -> int:
    bus = open_event_bus(config)
    bus.ping()
    for topic, partitions in config.kafka.topics().items():
        created = bus.ensure_topic(topic, partitions)
        layout = bus.topic_layout(topic)
        print(json.dumps({"topic": topic, "created": created, "partitions": layout.partitions,
                          "replication_factor": layout.replication_factor}))  # fmt: skip
        if not created and layout.partitions < partitions:
            print(f"streamrec: warning: topic {topic!r} has {layout.partitions} partitions, "
                  f"fewer than the {partitions} configured; the feature job can read it with "
                  f"no more parallelism than that", file=sys.stderr)  # fmt: skip
    return 0
