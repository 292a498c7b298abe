"""The fit's batches: every window once an epoch, grouped by length, split over replicas."""

import numpy as np

from streamrec.infra.core.config import TrainingConfig
from streamrec.training.window_batches import WindowBatches

POSITIONS = 21


def _windows(count: int = 1000) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, POSITIONS + 1, size=count)
    targets = np.zeros((count, POSITIONS), np.int64)
    for row, length in enumerate(lengths):
        targets[row, :length] = rng.integers(3, 50, size=length)
    numbers = np.repeat(np.arange(count)[:, None], POSITIONS, axis=1)  # which window a row is
    return {"number": numbers, "targets": targets}, lengths


def _epochs(batches: WindowBatches, epochs: int, **replicas) -> list[list[dict[str, np.ndarray]]]:
    stream = iter(batches.dataset(**replicas))
    per_epoch = batches.steps * len(replicas.get("served", range(1)))
    return [
        [{k: v.numpy() for k, v in next(stream).items()} for _ in range(per_epoch)]
        for _ in range(epochs)
    ]


def test_an_epoch_holds_every_window_once_in_batches_cut_to_their_longest():
    windows, lengths = _windows()
    batches = WindowBatches(windows, TrainingConfig(batch_size=64))
    for epoch in _epochs(batches, 2):
        numbers = np.concatenate([batch["number"][:, 0] for batch in epoch])
        assert sorted(numbers) == list(range(len(lengths)))  # none dropped, none twice
        for batch in epoch:
            real = batch["targets"] > 0
            assert real[:, -1].any()  # cut to the longest window of the batch, no wider
            assert len(batch["number"]) <= 64
    widths = [batch["targets"].shape[1] for batch in epoch]
    assert np.mean(widths) < 0.8 * POSITIONS  # similar lengths share a batch


def test_each_epoch_is_a_new_shuffle_and_a_new_batch_order():
    windows, _ = _windows()
    batches = WindowBatches(windows, TrainingConfig(batch_size=64))
    first, second = _epochs(batches, 2)
    assert [b["number"][0, 0] for b in first] != [b["number"][0, 0] for b in second]
    again = _epochs(WindowBatches(windows, TrainingConfig(batch_size=64)), 1)[0]
    assert [b["number"][0, 0] for b in again] == [b["number"][0, 0] for b in first]  # seeded


def test_replicas_take_contiguous_shares_of_the_same_global_batches():
    windows, _ = _windows(1001)
    batches = WindowBatches(windows, TrainingConfig(batch_size=64))
    whole = _epochs(batches, 1)[0]
    both = _epochs(batches, 1, replicas=2, served=range(2))[0]  # one pipeline, two replicas
    second = _epochs(batches, 1, replicas=2, served=range(1, 2))[0]  # a worker's pipeline
    for step, batch in enumerate(whole):
        first_half, second_half = both[2 * step]["number"][:, 0], both[2 * step + 1]["number"][:, 0]
        assert np.concatenate([first_half, second_half]).tolist() == batch["number"][:, 0].tolist()
        assert abs(len(first_half) - len(second_half)) <= 1
        assert second[step]["number"][:, 0].tolist() == second_half.tolist()


def test_xla_gets_full_width_batches_of_one_size():
    windows, _ = _windows()
    batches = WindowBatches(windows, TrainingConfig(batch_size=64, jit_compile=True))
    assert batches.steps == 1000 // 64  # the remainder waits for a later epoch's shuffle
    (epoch,) = _epochs(batches, 1)
    assert {batch["targets"].shape for batch in epoch} == {(64, POSITIONS)}
    tiny = WindowBatches(_windows(10)[0], TrainingConfig(batch_size=64, jit_compile=True))
    assert tiny.steps == 1 and _epochs(tiny, 1)[0][0]["targets"].shape == (10, POSITIONS)
