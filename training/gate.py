"""The promotion gate: a new version serves only if it is better than what serves now.

Better means, on the promotion metric of one evaluation run (same held-out queries, full
ranking): above every baseline, and not below the serving version by more than the configured
relative tolerance (retraining on new data moves figures a little either way).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide(
    result: dict, candidate: str, incumbent: str | None, metric: str, tolerance: float
) -> Decision:
    models = result["models"]
    if metric not in models[candidate]:
        raise ValueError(f"promotion metric {metric!r} was not evaluated")
    score = models[candidate][metric]
    for name, figures in models.items():
        if name in (candidate, incumbent):
            continue
        if score <= figures[metric]:
            return Decision(
                False,
                f"{metric} {score:.4f} does not beat the {name} baseline ({figures[metric]:.4f})",
            )
    if incumbent is not None:
        serving = models[incumbent][metric]
        if score < serving * (1.0 - tolerance):
            return Decision(
                False,
                f"{metric} {score:.4f} is below the serving {incumbent} ({serving:.4f}) "
                f"by more than {tolerance:.0%}",
            )
        return Decision(
            True,
            f"{metric} {score:.4f} vs the serving {incumbent} {serving:.4f} and every baseline",
        )
    return Decision(True, f"{metric} {score:.4f} beats every baseline; nothing served before")
