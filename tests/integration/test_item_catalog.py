"""The item catalog: `streamrec items import` -> items topic -> feature worker -> online store."""

import json

from streamrec.features.job import FeatureJob
from streamrec.infra.contracts.items import Item
from streamrec.infra.storage import open_event_bus, open_online_store
from streamrec.ingest.item_import import ItemMapping, import_items
from streamrec.ingest.publisher import publish
from streamrec.ingest.synthetic import SyntheticSpec, generate
from streamrec.ingest.tabular_files import TabularFile

MAPPING = ItemMapping({"item_id": "sku", "categories": "cats", "available": "in_stock"})


def _catalog_file(tmp_path, rows):
    path = tmp_path / "catalog.csv"
    path.write_text("sku,cats,in_stock\n" + "".join(f"{','.join(r)}\n" for r in rows))
    return TabularFile(path, "csv")


def _run_job(config, spark):
    job = FeatureJob(config, spark)
    job.run(until_idle=True)
    return job.items_read


def test_imported_items_reach_the_online_store_and_updates_replace_them(config, spark, tmp_path):
    bus = open_event_bus(config)
    for topic in (config.kafka.dead_letter_topic, config.kafka.late_topic):
        bus.ensure_topic(topic)
    publish(config, generate(SyntheticSpec(users=5, items=5, events=20, seed=3)), progress=False)
    rows = [("i-1", "home|lights", "yes"), ("i-2", "home", "no"), ("", "x", "yes")]
    summary = import_items(config, _catalog_file(tmp_path, rows), MAPPING, tmp_path / "r.jsonl")
    assert summary["items"] == 2 and summary["rejected_by_reason"] == {"invalid item": 1}
    bus.publish(config.kafka.items_topic, [(b"bad", b'{"item_id": "i-9", "colour": "red"}')])

    assert _run_job(config, spark) == 3
    store = open_online_store(config)
    assert store.items(["i-1", "i-2", "i-3"]) == {
        "i-1": Item("i-1", ("home", "lights"), True),
        "i-2": Item("i-2", ("home",), False),
    }
    assert store.items_in_categories(["lights"]) == {"i-1"}
    assert store.items_in_categories(["home", "nothing"]) == {"i-1", "i-2"}
    assert store.unavailable_items() == {"i-2"}

    update = [("i-1", "garden", "no"), ("i-2", "home", "yes")]
    import_items(config, _catalog_file(tmp_path, update), MAPPING, tmp_path / "r.jsonl")
    assert _run_job(config, spark) == 2  # only the new records
    assert store.items_in_categories(["lights", "home"]) == {"i-2"}
    assert store.items_in_categories(["garden"]) == {"i-1"}
    assert store.unavailable_items() == {"i-1"}
    assert sorted(item.item_id for item in store.catalog()) == ["i-1", "i-2"]
    assert _run_job(config, spark) == 0

    (letter,) = _letters(bus, config.kafka.dead_letter_topic)
    assert "unknown field(s): colour" in letter["reason"]
    assert letter["source"]["topic"] == config.kafka.items_topic


def _letters(bus, topic):
    ends = bus.end_offsets(topic)
    return [
        json.loads(record.value)
        for partition, end in ends.items()
        for chunk in bus.read(topic, partition, 0, end)
        for record in chunk
    ]
