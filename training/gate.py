"""The promotion gate: a new version serves only if it is better than what serves now.

Better means, on the promotion metric of one evaluation run (same held-out queries, full
ranking):

- above every baseline;
- and, against the serving version, better beyond noise, or non-inferior within the
  tolerance. Both read the 95% interval of the paired difference (:mod:`.intervals`): better
  beyond noise is an interval above 0; non-inferior is an interval whose lower end is above
  ``-tolerance`` x the serving version's figure. Retraining on newer data moves figures a
  little either way, and a fresh version that is as good should serve; one that may be worse
  by more than the tolerance should not, even if its point estimate is higher by luck.
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
    if incumbent is None:
        return Decision(True, f"{metric} {score:.4f} beats every baseline; nothing served before")
    return _against_incumbent(result, candidate, incumbent, metric, tolerance)


def _against_incumbent(
    result: dict, candidate: str, incumbent: str, metric: str, tolerance: float
) -> Decision:
    serving = result["models"][incumbent][metric]
    differences = result["differences"]
    if differences["of"] != candidate:
        raise ValueError(f"the evaluation's differences are of {differences['of']!r}")
    difference = differences["against"][incumbent][metric]
    low, high = difference["interval"] or (difference["difference"],) * 2
    shown = (
        f"{metric} {serving + difference['difference']:.4f} vs the serving {incumbent} "
        f"{serving:.4f}, difference {difference['difference']:+.4f} "
        f"(95% interval {low:+.4f} to {high:+.4f})"
    )
    if low > 0:
        return Decision(True, f"better beyond noise: {shown}")
    if low >= -tolerance * serving:
        return Decision(True, f"non-inferior within {tolerance:.0%}: {shown}")
    return Decision(False, f"may be worse by more than {tolerance:.0%}: {shown}")
