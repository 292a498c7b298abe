"""A run of the pipeline in its own namespace on a shared stack, as the demo and benchmarks do.

Each run gets its own topics, Redis key prefix and directories under ``<state_dir>/<name>/``,
so it neither sees nor disturbs anything else on the same broker and Redis, and its config file
lets every stage it starts as a process see exactly the same settings.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from streamrec.infra.core.config import Config, render_toml
from streamrec.infra.core.errors import StoreUnavailable
from streamrec.infra.devstack.free_port import free_port
from streamrec.infra.devstack.stage_process import StageProcesses
from streamrec.infra.storage import discard_key_namespace, open_event_bus


@dataclasses.dataclass(frozen=True)
class ScratchRun:
    config: Config  # the isolated configuration
    run_dir: Path
    stages: StageProcesses
    side_topics: list[str] = dataclasses.field(default_factory=list)  # discarded with the run

    @classmethod
    def create(cls, config: Config, name: str) -> ScratchRun:
        """A fresh run directory (an earlier run of the same name is removed) and namespace."""
        run_dir = config.state_dir / name
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        isolated = _isolated(config, run_dir, f"{name}-{int(time.time())}")
        config_file = run_dir / "streamrec.toml"
        config_file.write_text(render_toml(isolated))
        return cls(isolated, run_dir, StageProcesses(config_file, run_dir / "logs"))

    def discard(self) -> None:
        """Deletes the run's topics and Redis keys from the shared services. Its directory
        (logs, examples, models) stays until the next run of the same name.

        A benchmark's namespace holds the state of a million events. Left on a long-running
        stack, it slowed the runs after it: with 15 million stale keys, Redis spent twice the
        CPU per event of the feature job.
        """
        bus = open_event_bus(self.config)
        for topic in [*self.config.kafka.topics(), *self.side_topics]:
            bus.delete_topic(topic)
        discard_key_namespace(self.config)

    def side_topic(self, name: str) -> str:
        """A topic of the run's namespace besides the configured ones (discarded with it)."""
        topic = f"{self.config.kafka.events_topic}-{name}"
        self.side_topics.append(topic)
        return topic

    @contextlib.contextmanager
    def discarded_afterwards(self, say: Callable[[str], object]) -> Iterator[ScratchRun]:
        """The run, discarded when the block ends however it ends; a failure to discard is
        reported through ``say`` and does not hide the block's own outcome."""
        try:
            yield self
        finally:
            try:
                self.discard()
            except StoreUnavailable as exc:
                say(f"could not delete the run's topics and keys: {exc}")

    @property
    def serving_target(self) -> str:
        return f"{self.config.serving.host}:{self.config.serving.port}"


def _isolated(config: Config, run_dir: Path, namespace: str) -> Config:
    """``namespaced``, on the stack's state directory, with ports of its own."""
    config = namespaced(config, run_dir, namespace)
    return dataclasses.replace(
        config,
        stack=dataclasses.replace(config.stack, state_dir=str(config.state_dir)),
        features=dataclasses.replace(config.features, metrics_port=free_port()),
        serving=dataclasses.replace(
            config.serving, host="127.0.0.1", port=free_port(), metrics_port=free_port()
        ),
    )


def namespaced(config: Config, run_dir: Path, namespace: str) -> Config:
    """``config`` with topics, Redis keys, a consumer group and directories of its own (under
    ``run_dir``), so a run shares the stack with others without seeing their data. The one
    namespacing of runs, tests' included."""
    return dataclasses.replace(
        config,
        kafka=dataclasses.replace(
            config.kafka,
            events_topic=f"{namespace}-events",
            dead_letter_topic=f"{namespace}-events.dlq",
            late_topic=f"{namespace}-events.late",
            imports_topic=f"{namespace}-events.imports",
            items_topic=f"{namespace}-items",
        ),
        redis=dataclasses.replace(config.redis, key_prefix=f"streamrec-{namespace}"),
        offline_examples=dataclasses.replace(
            config.offline_examples, path=str(run_dir / "examples")
        ),
        features=dataclasses.replace(
            config.features,
            checkpoint_dir=str(run_dir / "checkpoints" / "features"),
            consumer_group=f"{namespace}-features",
        ),
        training=dataclasses.replace(config.training, model_dir=str(run_dir / "models")),
    )
