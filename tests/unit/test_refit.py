"""The refit after early stopping: the chosen epochs again, on every training example."""

from streamrec.infra.core.config import TrainingConfig
from streamrec.training.refit import record_stop, recorded_stop, refit_params, refit_summary

STOPPED = {
    "epochs_run": 9, "best_epoch": 4, "validation_recall@10": 0.2, "validation_queries": 50,
    "train_loss": 1.0, "queries": 950, "resumed": True, "steps_planned": 1000, "steps_run": 90,
}  # fmt: skip


def test_the_refit_trains_the_epoch_early_stopping_chose_without_stopping_again():
    refit = refit_params(TrainingConfig(epochs=100, patience=5, refit=True), STOPPED)
    assert (refit.epochs, refit.patience) == (4, 0)


def test_nothing_is_refit_without_early_stopping_or_when_switched_off():
    assert refit_params(TrainingConfig(patience=0), {"train_loss": 1.0}) is None
    assert refit_params(TrainingConfig(refit=False), STOPPED) is None


def test_a_killed_run_finds_what_its_first_fit_chose(tmp_path):
    run_dir = tmp_path / "run"
    assert recorded_stop(run_dir) is None
    record_stop(run_dir, STOPPED)
    assert recorded_stop(run_dir) == STOPPED


def test_one_summary_tells_where_it_stopped_and_what_both_fits_ran():
    refit = {"train_loss": 0.9, "queries": 1000, "resumed": False, "steps_planned": 40,
             "steps_run": 40}  # fmt: skip
    summary = refit_summary(STOPPED, refit, 4)
    assert (summary["train_loss"], summary["queries"]) == (0.9, 1000)  # the version's fit
    assert (summary["best_epoch"], summary["epochs_run"], summary["refit_epochs"]) == (4, 9, 4)
    assert summary["validation_queries"] == 50 and summary["resumed"] is True
    assert (summary["steps_planned"], summary["steps_run"]) == (1040, 130)
