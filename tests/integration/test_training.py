import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from streamrec.infra.contracts.export_layout import (
    CHECKSUMS_FILE,
    HISTORY_EVENT_TYPES_INPUT,
    HISTORY_INPUT,
    HISTORY_TIMES_INPUT,
    QUERY_OUTPUT,
    REQUEST_CONTEXT_INPUT,
    REQUEST_TIME_INPUT,
    SIGNATURE_NAME,
    USER_ID_INPUT,
    versions,
)
from streamrec.infra.contracts.item_neighbours import ItemNeighbours
from streamrec.infra.core.errors import StreamrecError
from streamrec.infra.storage import open_model_registry
from streamrec.infra.storage.ports.online_store import HistoryEntry
from streamrec.serving.item_filter import ItemFilter
from streamrec.training.trainer import train
from tests.conftest import free_port
from tests.integration.conftest import TRAINING_EVENTS_SPEC

pytestmark = pytest.mark.slow  # training runs beyond the session's model


def test_export_follows_the_layout(trained):
    config, _, result = trained
    version = result.version
    assert version.version == 1
    assert (version.root / "saved_model.pb").is_file()
    assert (version.root / CHECKSUMS_FILE).is_file()
    item_ids = version.item_ids_file.read_text().splitlines()
    embeddings = np.load(version.item_embeddings_file)
    assert embeddings.shape == (len(item_ids), config.training.embedding_dim)
    assert embeddings.dtype == np.float32
    assert len(set(item_ids)) == len(item_ids) == 120
    assert not list(version.root.parent.glob(".staging-*"))


def test_metadata_records_window_parent_code_version_and_metrics(trained):
    config, events, result = trained
    metadata = json.loads(result.version.metadata_file.read_text())
    assert metadata["version"] == 1 and metadata["parent_version"] is None
    assert metadata["code_version"] and metadata["model"] == "two_tower/transformer"
    data = metadata["data"]
    assert data["examples"] == len(events)
    assert data["min_timestamp"] == events[0].timestamp
    assert data["max_timestamp"] == events[-1].timestamp
    # The hold-out is a share of the examples, not of the time range.
    assert data["holdout_examples"] == pytest.approx(0.1 * len(events), rel=0.05)
    assert metadata["parameters"]["epochs"] == config.training.epochs
    # Early stopping held out the newest 5% of the training part and kept its best epoch.
    fit = metadata["fit"]
    assert fit["validation_queries"] == pytest.approx(0.05 * 0.9 * len(events), rel=0.1)
    assert 1 <= fit["best_epoch"] <= fit["epochs_run"] <= config.training.epochs
    # ...and did not train on it: every training event is a query of the fit or of validation.
    assert fit["queries"] + fit["validation_queries"] == len(events) - data["holdout_examples"]
    figures = metadata["evaluation"]["models"]
    assert metadata["evaluation"]["queries"] == data["holdout_examples"]
    # The planted structure is learnable: the model beats both baselines on later events.
    assert figures["candidate"]["recall@10"] > 1.5 * figures["most_popular"]["recall@10"]
    assert figures["candidate"]["recall@10"] > figures["ease"]["recall@10"]
    assert metadata["promotion"]["promoted"] is True
    # The popularity prior's weight was chosen among those tried on the validation share.
    prior = metadata["popularity_prior"]
    tried = {float(weight): recall for weight, recall in prior["validation_recall@10"].items()}
    assert set(tried) == {0.0, 0.25, 0.5, 1.0, 2.0}
    best = min(weight for weight, recall in tried.items() if recall == max(tried.values()))
    assert round(prior["weight"] / config.training.temperature, 6) == best
    assert prior["weight"] == 0 or (prior["window"], prior["depth"]) == ("7d", 1000)
    # So was the neighbour lists', after the prior: at weight 0 they rank as the prior chosen.
    neighbours = metadata["item_neighbours"]
    with_prior = tried[best]
    tried = {float(weight): recall for weight, recall in neighbours["validation_recall@10"].items()}
    assert set(tried) == {0.0, 2.5, 5.0, 10.0, 20.0, 40.0}
    assert tried[0.0] == pytest.approx(with_prior, abs=1e-3)  # up to float rounding
    best = min(weight for weight, recall in tried.items() if recall == max(tried.values()))
    assert round(neighbours["weight"] / config.training.temperature, 6) == best
    # The lists are exported whatever the weight.
    lists = ItemNeighbours.load(result.version.item_neighbours_file)
    assert lists.rows == metadata["items"] and 0 < np.diff(lists.indptr).max() <= 100
    # The catalog's categories (the planted groups) are candidate-tower features.
    assert metadata["item_features"] == {
        "categories": 3,
        "items_with_categories": 120,
        "category_names": ["group-0000", "group-0001", "group-0002"],
    }


def test_without_the_online_store_training_says_how_to_train_on_ids_alone(trained_copy):
    config = dataclasses.replace(
        trained_copy,
        redis=dataclasses.replace(trained_copy.redis, url=f"redis://127.0.0.1:{free_port()}/0"),
    )
    with pytest.raises(StreamrecError) as exc:
        train(config, config.training)
    assert "training.item_features = false" in str(exc.value) and "\n" not in str(exc.value)
    ids_alone = dataclasses.replace(config.training, item_features=False, epochs=1)
    metadata = train(config, ids_alone).version.metadata()
    assert metadata["item_features"]["categories"] == 0


def test_the_first_version_that_beats_the_baselines_serves(trained):
    config, _, result = trained
    assert result.decision.promote
    assert open_model_registry(config).current().version == result.version.version


def test_serving_signature_accepts_unknown_ids(trained):
    config, _, result = trained
    signature = tf.saved_model.load(str(result.version.saved_model_dir)).signatures[SIGNATURE_NAME]
    history = [["i-000001", "never-seen-item", "", "", ""], ["", "", "", "", ""]]
    out = signature(**_signature_inputs(history, [["view", "teleport", "", "", ""], [""] * 5]))
    embeddings = out[QUERY_OUTPUT].numpy()
    assert embeddings.shape == (2, config.training.embedding_dim)
    assert np.isfinite(embeddings).all()
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_the_query_reads_how_long_ago_and_what_kind_the_history_events_were(trained):
    _, _, result = trained
    signature = tf.saved_model.load(str(result.version.saved_model_dir)).signatures[SIGNATURE_NAME]
    history = [["i-000001", "i-000002", "", "", ""]]
    base = signature(**_signature_inputs(history, [["view", "view", "", "", ""]]))
    later = signature(**_signature_inputs(history, [["view", "view", "", "", ""]], 86_400_000))
    clicked = signature(**_signature_inputs(history, [["click", "view", "", "", ""]]))
    for other in (later, clicked):
        assert not np.allclose(base[QUERY_OUTPUT].numpy(), other[QUERY_OUTPUT].numpy())


def test_the_query_reads_the_requests_context(trained):
    """The planted deals surface: asked from there, users buy their taste group's promoted
    item, so the model should rank a promoted item first there and not at home."""
    from streamrec.ingest.synthetic import SyntheticSpec, deal_items
    from streamrec.serving.retrieval_model import RetrievalModel

    _, events, result = trained
    deals = set(deal_items(SyntheticSpec(**TRAINING_EVENTS_SPEC)))
    served = RetrievalModel(result.version)
    histories: dict[str, list] = {}
    for e in events[:3000]:
        histories.setdefault(e.user_id, []).insert(
            0, HistoryEntry(e.timestamp, e.event_id, e.item_id, e.event_type)
        )

    def first(user, surface):
        query = served.query_embedding(
            user, histories[user], events[3000].timestamp, (f"surface={surface}",)
        )
        return served.top_k(query, 1, ItemFilter())[0][0]

    users = sorted(histories)[:40]
    on_deals = sum(first(user, "deals") in deals for user in users)
    at_home = sum(first(user, "home") in deals for user in users)
    assert on_deals >= 0.8 * len(users) and at_home <= 0.3 * len(users), (on_deals, at_home)


def _signature_inputs(history, types, since_last_ms=60_000):
    now = 1_767_571_200_000
    times = [
        [now - since_last_ms - 1000 * i if item else -1 for i, item in enumerate(row)]
        for row in history
    ]
    return {
        USER_ID_INPUT: tf.constant([f"u-{i}" for i in range(len(history))]),
        HISTORY_INPUT: tf.constant(history),
        HISTORY_TIMES_INPUT: tf.constant(times, tf.int64),
        HISTORY_EVENT_TYPES_INPUT: tf.constant(types),
        REQUEST_TIME_INPUT: tf.constant([now] * len(history), tf.int64),
        REQUEST_CONTEXT_INPUT: tf.constant([[""]] * len(history)),
    }


def test_the_gate_keeps_a_worse_model_as_a_candidate(trained_copy):
    config = trained_copy
    worse = dataclasses.replace(config.training, epochs=1, learning_rate=1e-7)
    again = train(config, worse)
    assert again.version.version == 2
    assert not again.decision.promote
    # Refused for trailing a baseline, or (its boosts lift an untrained tower past them) for
    # trailing the serving version beyond the tolerance.
    refusals = ("does not beat", "may be worse by more than")
    assert any(refusal in again.decision.reason for refusal in refusals), again.decision.reason
    assert open_model_registry(config).current().version == 1
    metadata = again.version.metadata()
    assert metadata["parent_version"] == 1 and metadata["promotion"]["promoted"] is False
    assert [v.version for v in versions(config.model_dir)] == [1, 2]


def test_a_refit_trains_the_chosen_epochs_again_on_the_validation_share_too(trained_copy):
    config = trained_copy
    lines = []
    refit = dataclasses.replace(config.training, refit=True, epochs=4, patience=1)
    fit = train(config, refit, say=lines.append).version.metadata()["fit"]
    assert 1 <= fit["best_epoch"] <= fit["epochs_run"] <= 4
    assert fit["refit_epochs"] == fit["best_epoch"]
    assert f"refit: {fit['best_epoch']} epochs on the whole training part" in "\n".join(lines)
    # The version trained on every training event: the validation share is queries too.
    held_out = fit["validation_queries"]
    assert (
        held_out > 0
        and fit["queries"] == versions(config.model_dir)[0].metadata()["fit"]["queries"] + held_out
    )
    assert not any((config.model_dir / ".runs").iterdir())  # both fits' checkpoints removed


def test_an_empty_date_window_is_refused(trained):
    config, _, _ = trained
    with pytest.raises(
        StreamrecError, match=r"no committed training examples .* between 2030-01-01"
    ):
        train(config, config.training, start_date="2030-01-01")


def _cli(capsys, config, tmp_path, *argv):
    from streamrec.infra.cli.main import main
    from streamrec.infra.core.config import render_toml

    path = tmp_path / "streamrec.toml"
    path.write_text(render_toml(config))
    code = main(["--config", str(path), *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_evaluate_ranks_versions_and_baselines_on_the_training_hold_out(
    trained_copy, tmp_path, capsys
):
    config = trained_copy
    train(config, dataclasses.replace(config.training, epochs=1, learning_rate=1e-7))
    code, out, err = _cli(
        capsys, config, tmp_path, "evaluate", "--candidate", "2", "--incumbent", "1",
        "--k", "5,20", "--exclude-seen", "--json",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    models = result["models"]
    assert set(models) == {"version 2", "version 1", "most_popular", "ease"}
    assert result["exclude_seen"] and result["ks"] == [5, 20]
    assert result["queries"] == result["window"]["holdout_examples"]
    assert models["version 1"]["recall@20"] > models["version 2"]["recall@20"]
    for figures in models.values():
        assert {"mrr", "ndcg@5", "coverage@20", "popularity_rank@5"} <= set(figures)
        low, high = figures["intervals"]["recall@20"]
        assert low <= figures["recall@20"] <= high and low < high
    # The paired difference: version 2 (learning rate 1e-7) is worse beyond noise.
    assert result["differences"]["of"] == "version 2"
    difference = result["differences"]["against"]["version 1"]["recall@20"]
    assert difference["interval"][0] <= difference["difference"] <= difference["interval"][1] < 0
    assert result["settings"]["version 2"]["learning_rate"] == 1e-7
    report = config.model_dir / "2" / "evaluation" / "temporal-unseen-vs-1"
    page = (report / "report.html").read_text()
    assert page.count("<img") == 3
    assert "Data: examples of" in page and "learning_rate=1e-07" in page
    # Unsaid, seen items are left out as serving leaves them out; --no-exclude-seen keeps them.
    for flags, excluded in (([], True), (["--no-exclude-seen"], False)):
        code, out, err = _cli(capsys, config, tmp_path, "evaluate", "--k", "10", "--json", *flags)
        assert code == 0, err
        assert json.loads(out.strip().splitlines()[-1])["exclude_seen"] is excluded
    assert json.loads((report / "evaluation.json").read_text())["queries"] == result["queries"]


def test_models_promote_and_rollback_move_what_serves(trained_copy, tmp_path, capsys):
    config = trained_copy
    train(config, dataclasses.replace(config.training, epochs=1, learning_rate=1e-7))
    assert _cli(capsys, config, tmp_path, "models", "promote", "2")[0] == 0
    code, out, _ = _cli(capsys, config, tmp_path, "models", "list")
    assert code == 0 and out.splitlines()[2].startswith("* ")  # version 2, marked serving
    assert open_model_registry(config).current().version == 2
    code, out, _ = _cli(capsys, config, tmp_path, "models", "rollback")
    assert code == 0 and "version 1 serves now" in out
    code, out, _ = _cli(capsys, config, tmp_path, "models", "show", "1")
    assert json.loads(out)["version"] == 1
