"""Integration fixtures: namespaced configs, Spark, a trained model (the services they run on
are the session's, in tests/conftest.py)."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from streamrec.infra.core.config import Config
from streamrec.infra.devstack import scratch_run

_names = itertools.count()


@pytest.fixture
def config(stack, tmp_path) -> Config:
    """The session stack with a private namespace: topics, Redis keys and directories."""
    return namespaced(stack, tmp_path)


def namespaced(stack: Config, tmp_path) -> Config:
    """``stack`` with its own topics, Redis keys and directories under ``tmp_path``; short
    histories and no metrics endpoint."""
    config = scratch_run.namespaced(stack, tmp_path, f"t{next(_names)}")
    return dataclasses.replace(
        config,
        features=dataclasses.replace(config.features, history_length=5, metrics_port=0),
    )


@pytest.fixture(scope="session")
def spark(stack):
    from streamrec.features.spark_session import build_spark_session

    session = build_spark_session(stack, app_name="streamrec-tests")
    yield session
    session.stop()


TRAINING_EVENTS_SPEC = dict(users=150, items=120, events=9000, seed=21)


@pytest.fixture(scope="session")
def trained(stack, tmp_path_factory):
    """A model trained once per session on planted data: (config, events, model version)."""
    from streamrec.infra.storage import open_online_store
    from streamrec.ingest.synthetic import SyntheticSpec, generate, generate_items
    from streamrec.training.trainer import train
    from tests.integration.offline_examples import write_offline_examples

    root = tmp_path_factory.mktemp("trained")
    config = dataclasses.replace(
        stack,
        redis=dataclasses.replace(stack.redis, key_prefix="test-trained"),
        offline_examples=dataclasses.replace(stack.offline_examples, path=str(root / "examples")),
        features=dataclasses.replace(stack.features, history_length=5),
        training=dataclasses.replace(
            stack.training,
            model_dir=str(root / "models"),
            epochs=6,
            embedding_dim=32,
            batch_size=64,
        ),
    )
    events = generate(SyntheticSpec(**TRAINING_EVENTS_SPEC))
    write_offline_examples(config, events)
    open_online_store(config).put_items(generate_items(SyntheticSpec(**TRAINING_EVENTS_SPEC)))
    return config, events, train(config, config.training)


@pytest.fixture
def trained_copy(trained, tmp_path) -> Config:
    """The trained session model's examples and models, copied so a test may change them."""
    import shutil

    config, _, _ = trained
    shutil.copytree(config.model_dir, tmp_path / "models")
    return dataclasses.replace(
        config, training=dataclasses.replace(config.training, model_dir=str(tmp_path / "models"))
    )
