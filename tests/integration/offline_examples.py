"""Commits offline examples exactly as the feature job does, without running Spark.

Training and serving tests start from this contract rather than from the feature job, so they
exercise the boundary the stages really share: TFRecord files committed by a batch manifest
through the offline-examples port. The files are written by the job's own staging writer.
"""

from __future__ import annotations

from streamrec.features.example_files import StagedExampleWriter
from streamrec.features.examples import point_in_time_examples
from streamrec.infra.config import Config
from streamrec.infra.contracts.events import Event
from streamrec.infra.contracts.feature_spec import BatchManifest, batch_name
from streamrec.infra.stores import open_offline_examples


def write_offline_examples(config: Config, events: list[Event], batch_id: int = 0) -> int:
    """Commits one batch holding every event's point-in-time example; returns how many."""
    examples = point_in_time_examples(events, {}, config.features.history_length)
    store = open_offline_examples(config)
    name = batch_name(batch_id)
    writer = StagedExampleWriter(store.staging_dir(name), part=0)
    for example in examples:
        writer.write(example)
    staged = writer.close()
    files = [file.example_file(name) for file in staged]
    manifest = BatchManifest(batch_id=batch_id, files=tuple(files))
    store.commit(manifest, {f.path: s.staged for f, s in zip(files, staged, strict=True)})
    return len(examples)
