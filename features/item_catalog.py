"""Keeps the online store's item catalog in step with the ``items`` topic.

Item records are few next to events, so the feature worker applies them between its
micro-batches, on the driver, without Spark: it reads each partition from the consumer group's
position (``<features.consumer_group>-items``), writes the valid records to the online store,
sends the invalid ones to the dead-letter topic with their reason, and only then commits the
new position. Writing a record again changes nothing, so a crash in between loses nothing.
"""

from __future__ import annotations

from streamrec.features.rejections import RejectedRecord, send_rejections
from streamrec.infra.contracts.items import InvalidItem, Item, parse_item
from streamrec.infra.core.config import Config
from streamrec.infra.storage.ports.event_bus import EventBus, TopicNotFound
from streamrec.infra.storage.ports.online_store import OnlineStore


def sync_item_catalog(config: Config, bus: EventBus, online_store: OnlineStore) -> int:
    """Applies every item record not applied yet; returns how many records it read."""
    topic = config.kafka.items_topic
    group = f"{config.features.consumer_group}-items"
    try:
        ends = bus.end_offsets(topic)
    except TopicNotFound:
        return 0  # no catalog was ever published
    done = bus.committed_offsets(group, topic)
    read = 0
    for partition, end in ends.items():
        start = done.get(partition, 0)
        if end <= start:
            continue
        items: list[Item] = []
        rejected: list[RejectedRecord] = []
        for chunk in bus.read(topic, partition, start, end):
            for record in chunk:
                try:
                    items.append(parse_item(record.value or b""))
                except InvalidItem as exc:
                    rejected.append(
                        RejectedRecord(record.key, record.value, partition, record.offset, str(exc))
                    )
        online_store.put_items(items)
        send_rejections(bus, config.kafka.dead_letter_topic, topic, rejected)
        bus.commit_offsets(group, topic, {partition: end})
        read += end - start
    return read
