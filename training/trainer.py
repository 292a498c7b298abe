"""The trainer role: committed examples -> fitted two-tower model -> new exported version."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import numpy as np
import tensorflow as tf

from streamrec.infra.config import Config, TrainingConfig
from streamrec.infra.contracts import feature_spec as spec
from streamrec.infra.contracts.export_layout import HISTORY_PADDING, ModelVersion
from streamrec.infra.contracts.feature_spec import ExampleFile
from streamrec.infra.errors import StreamrecError
from streamrec.infra.stores import open_offline_examples
from streamrec.training.dataset import TimeSplit, collect, example_dataset
from streamrec.training.evaluation import popularity_recall_at_k, recall_at_k, target_ranks
from streamrec.training.export import export_model
from streamrec.training.towers import CandidateTower, QueryTower
from streamrec.training.two_tower import TwoTowerModel

EVAL_K = 10
_CHUNK = 4096  # examples per batch when scanning, embedding or evaluating (not training)


@dataclass(frozen=True)
class Vocabulary:
    users: list[str]
    items: list[str]
    item_counts: dict[str, int]  # how often each item is a training target


def train(
    config: Config,
    params: TrainingConfig,
    start_date: str | None = None,
    end_date: str | None = None,
) -> ModelVersion:
    """Fits a model on the committed examples in ``[start_date, end_date]`` and exports it."""
    started = time.monotonic()
    files = committed_files(config, start_date, end_date)
    tf.keras.utils.set_random_seed(params.seed)
    history_length = config.features.history_length
    split = TimeSplit.from_files(files, params.validation_fraction)
    vocabulary = build_vocabulary(
        example_dataset(files, history_length, _CHUNK, keep="train", split=split)
    )
    if not vocabulary.items:
        raise StreamrecError("the training window holds no examples; widen the date range")
    print(
        f"train: {len(vocabulary.users)} users, {len(vocabulary.items)} items, {len(files)} files"
    )

    strategy = distribution_strategy()
    train_data = example_dataset(
        files,
        history_length,
        params.batch_size * strategy.num_replicas_in_sync,  # the global batch
        keep="train",
        split=split,
        shuffle_seed=params.seed,
    )
    with strategy.scope():
        model = TwoTowerModel(
            QueryTower(vocabulary.users, vocabulary.items, params.embedding_dim),
            CandidateTower(vocabulary.items, params.embedding_dim),
        )
        model.compile(optimizer=tf.keras.optimizers.Adagrad(params.learning_rate))
    fitted = model.fit(train_data, epochs=params.epochs, verbose=2)

    item_embeddings = embed_items(model.candidate_tower, vocabulary.items)
    validation = collect(
        example_dataset(files, history_length, _CHUNK, keep="validation", split=split)
    )
    metrics = {
        "train_loss": float(fitted.history["loss"][-1]),
        **evaluate(model.query_tower, vocabulary, item_embeddings, validation),
    }
    metadata = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": "two_tower",
        "feature_spec_version": spec.FEATURE_SPEC_VERSION,
        "history_length": history_length,
        "embedding_dim": params.embedding_dim,
        "users": len(vocabulary.users),
        "items": len(vocabulary.items),
        "data": describe_data(config, files, split),
        "parameters": {**asdict(params), "replicas": strategy.num_replicas_in_sync},
        "metrics": metrics,
        "training_seconds": round(time.monotonic() - started, 1),
    }
    return export_model(
        config.model_dir,
        model.query_tower,
        history_length,
        vocabulary.items,
        item_embeddings,
        metadata,
    )


def committed_files(
    config: Config, start_date: str | None, end_date: str | None
) -> list[ExampleFile]:
    files = open_offline_examples(config).files(start_date, end_date)
    if not files:
        window = (
            f" between {start_date or '...'} and {end_date or '...'}"
            if start_date or end_date
            else ""
        )
        raise StreamrecError(
            f"no committed training examples in {config.examples_dir}{window}; "
            "run `streamrec features run --until-idle` first"
        )
    return files


def distribution_strategy() -> tf.distribute.Strategy:
    """All local GPUs when there are several; otherwise the default (one device) strategy."""
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def build_vocabulary(dataset: tf.data.Dataset) -> Vocabulary:
    """Every user and item of the examples; items ordered from most to least frequent target."""
    users: set[str] = set()
    items: set[str] = set()
    targets: Counter[str] = Counter()
    for batch in dataset.as_numpy_iterator():
        users.update(u.decode() for u in np.unique(batch[spec.USER_ID]))
        targets.update(i.decode() for i in batch[spec.ITEM_ID])
        items.update(i.decode() for i in np.unique(batch[spec.HISTORY]))
    items.update(targets)
    items.discard(HISTORY_PADDING)
    ordered = sorted(items, key=lambda item: (-targets[item], item))
    return Vocabulary(sorted(users), ordered, dict(targets))


def embed_items(tower: CandidateTower, item_ids: list[str]) -> np.ndarray:
    return np.concatenate(
        [
            tower(tf.constant(item_ids[i : i + _CHUNK])).numpy()
            for i in range(0, len(item_ids), _CHUNK)
        ]
    )


def evaluate(
    query_tower: QueryTower, vocabulary: Vocabulary, item_embeddings: np.ndarray, data: dict
) -> dict[str, float]:
    """Validation Recall@10 of the model and of most-popular, by full ranking over all items."""
    if not data:
        return {"validation_examples": 0}
    queries = np.concatenate(
        [
            query_tower(
                {
                    spec.USER_ID: data[spec.USER_ID][i : i + _CHUNK],
                    spec.HISTORY: data[spec.HISTORY][i : i + _CHUNK],
                }
            ).numpy()
            for i in range(0, len(data[spec.USER_ID]), _CHUNK)
        ]
    )
    index = {item: row for row, item in enumerate(vocabulary.items)}
    targets_text = [t.decode() for t in data[spec.ITEM_ID]]
    targets = np.array([index.get(t, -1) for t in targets_text])
    ranks = target_ranks(queries, item_embeddings, targets)
    return {
        "validation_examples": len(targets),
        f"validation_recall_at_{EVAL_K}": recall_at_k(ranks, EVAL_K),
        f"validation_popularity_recall_at_{EVAL_K}": popularity_recall_at_k(
            vocabulary.item_counts, targets_text, EVAL_K
        ),
    }


def describe_data(config: Config, files: list[ExampleFile], split: TimeSplit) -> dict:
    return {
        "examples_dir": str(config.examples_dir),
        "start_date": files[0].date,
        "end_date": files[-1].date,
        "files": len(files),
        "examples": sum(f.examples for f in files),
        "min_timestamp": min(f.min_timestamp for f in files),
        "max_timestamp": max(f.max_timestamp for f in files),
        "validation_cutoff_timestamp": split.cutoff,
    }
