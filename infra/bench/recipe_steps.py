"""The steps of ``streamrec bench quality``: the default recipe, the one before it, and the
default with one setting changed per step (:mod:`.quality`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from streamrec.infra.core.errors import StreamrecError

DEFAULT = "default"
PREVIOUS = "previous-defaults"


@dataclasses.dataclass(frozen=True)
class RecipeStep:
    name: str
    training: dict  # TrainingConfig fields that differ from the configured ones
    history_length: int | None = None  # features.history_length, if it differs


# The recipe before issue 28: a sampled in-batch softmax, seen targets trained on, 20 items
# of history (128 windows a batch), 30 fixed epochs, no popularity prior, no neighbour lists.
_PREVIOUS = RecipeStep(
    PREVIOUS,
    {
        "softmax": "sampled",
        "temperature": 0.1,
        "exclude_seen": False,
        "epochs": 30,
        "patience": 0,
        "batch_size": 128,
        "popularity_prior_window": "",
        "neighbours_per_item": 0,
    },
    20,
)

STEPS: tuple[RecipeStep, ...] = (
    RecipeStep(DEFAULT, {}),
    _PREVIOUS,
    RecipeStep("seen-targets-trained", {"exclude_seen": False}),
    RecipeStep("full-softmax", {"softmax": "full"}),
    RecipeStep("uniform-negatives-128", {"extra_negatives": 128}),
    RecipeStep("temperature-0.05", {"temperature": 0.05}),
    RecipeStep("temperature-0.02", {"temperature": 0.02}),
    # A batch is a number of windows: longer windows take fewer a batch, so that a step still
    # reads about as many queries (48 windows x 50 positions) and an epoch as many steps.
    RecipeStep("history-20", {"batch_size": 128}, 20),
    RecipeStep("history-100", {"batch_size": 24}, 100),
    RecipeStep("history-200", {"batch_size": 12}, 200),
    RecipeStep("blocks-1", {"blocks": 1}),
    RecipeStep("blocks-4", {"blocks": 4}),
    RecipeStep("dropout-0.1", {"dropout": 0.1}),
    RecipeStep("dropout-0.4", {"dropout": 0.4}),
    RecipeStep("refit", {"refit": True}),
    RecipeStep("no-popularity-prior", {"popularity_prior_window": ""}),
    RecipeStep("no-item-neighbours", {"neighbours_per_item": 0}),
    RecipeStep("patience-2", {"patience": 2}),
    RecipeStep("patience-10", {"patience": 10}),
    RecipeStep("fixed-30-epochs", {"patience": 0, "epochs": 30}),
)


def steps_named(names: Sequence[str] | None) -> list[RecipeStep]:
    """The steps to run, in the table's order; the default is always among them."""
    if not names:
        return list(STEPS)
    known = {step.name: step for step in STEPS}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise StreamrecError(
            f"unknown recipe step {', '.join(unknown)} (known: {', '.join(known)})"
        )
    return [step for step in STEPS if step.name in {DEFAULT, *names}]
