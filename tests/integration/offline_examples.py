"""Commits offline examples exactly as the feature job does, without running Spark.

Training and serving tests start from this contract rather than from the feature job, so they
exercise the boundary the stages really share: TFRecord files committed by a batch manifest
through the offline-examples port. The files are written by the job's own staging writer.
"""

from __future__ import annotations

from streamrec.features.example_files import StagedExampleWriter, example_records
from streamrec.features.tfrecord import decode_example, decode_sequence_example, read_records
from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.contracts.events import Event
from streamrec.infra.contracts.feature_spec import BatchManifest, batch_name
from streamrec.infra.core.config import Config
from streamrec.infra.storage import open_offline_examples


def write_offline_examples(config: Config, events: list[Event], batch_id: int = 0) -> int:
    """Commits one batch holding every event, in the configured layout; returns how many."""
    layout = config.features.example_layout
    records = example_records(layout, events, {}, config.features.history_length)
    store = open_offline_examples(config)
    name = batch_name(batch_id)
    writer = StagedExampleWriter(store, name, part=0, layout=layout)
    for record in records:
        writer.write(record)
    staged = writer.close()
    files = [file.example_file(name) for file in staged]
    manifest = BatchManifest(batch_id=batch_id, files=tuple(files))
    store.commit(manifest, {f.path: s.staged for f, s in zip(files, staged, strict=True)})
    return sum(record.examples for record in records)


def committed_event_ids(config: Config) -> list[str]:
    """The event id of every committed example, in either layout, repeats included."""
    found = []
    for file in open_offline_examples(config).files():
        for record in read_records(file.path):
            if file.layout == spec.SEQUENCES_LAYOUT:
                found += [
                    step[0].decode() for step in decode_sequence_example(record)[1]["event_id"]
                ]
            else:
                found.append(decode_example(record)[spec.EVENT_ID][0].decode())
    return found


def committed_records(config: Config) -> list[bytes]:
    """Every committed record, as bytes, in an order that does not depend on file names (they
    name the batches, which differ between runs that cut the stream differently)."""
    return sorted(r for f in open_offline_examples(config).files() for r in read_records(f.path))
