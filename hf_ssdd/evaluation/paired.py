"""Paired comparisons over seeds: is a distilled set ahead of a baseline, or of another method's set of its size, and
by how much, with a 95% interval?

Within a seed every method shares the target's labelled sample, the probe's and the fine-tuning's random draws and
the learner's initialisation, so the seed-to-seed noise they share cancels in `mkdt - baseline`: the interval of
the paired difference (Student t over the seeds' differences, `n - 1` degrees of freedom) is the one to read, not
the overlap of two mean ± std. The subjects are the rows of distilled sets, one per method (`krr_st`, `mkdt`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .results import values_by_seed

REAL_SUBSETS = ("random", "kmeans")  # the paper's baselines (real images with labels): the best one is compared
# the open question (the same images with teacher targets: each method's own start, random or high-loss), and no set
ALSO_COMPARED = ("init", "init_high_loss", "random_mse", "scratch")
BEST_SUBSET = "best of random, kmeans"


@dataclass(frozen=True)
class PairedDifference:
    """Mean of `a - b` over the seeds both have, and its 95% interval (NaN with one seed); `against` names `b`
    where a row stands for several baselines (the better real subset)."""

    mean: float
    low: float
    high: float
    seeds: int
    against: str | None = None

    @property
    def above_zero(self) -> bool:
        return self.low > 0

    @property
    def below_zero(self) -> bool:
        return self.high < 0


def t_quantile(degrees: int, level: float = 0.95) -> float:
    """The two-sided `level` quantile of Student's t with `degrees` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, degrees))


def half_width(std: float, n: int, level: float = 0.95) -> float:
    """Half the `level` interval of a mean of `n` values of sample std `std` (NaN for one value)."""
    return t_quantile(n - 1, level) * std / math.sqrt(n) if n > 1 else math.nan


def paired_difference(a: dict[int, float], b: dict[int, float], against: str | None = None) -> PairedDifference | None:
    """`a` and `b` map seeds to scores; None when they share no seed."""
    seeds = sorted(a.keys() & b.keys())
    if not seeds:
        return None
    diffs = [a[s] - b[s] for s in seeds]
    mean = sum(diffs) / len(diffs)
    std = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1)) if len(diffs) > 1 else math.nan
    half = half_width(std, len(diffs))
    return PairedDifference(mean, mean - half, mean + half, len(diffs), against)


def comparisons(rows: list[dict], shared: tuple[str, ...] = ()) -> dict:
    """`{(table, column): {(m, arch, subject, baseline): PairedDifference}}` of each distilled set's row (`subject`:
    its method) against `init`, `init_high_loss`, `random_mse`, `scratch`, the better (by mean, per column:
    `against` names it) of `random` and `kmeans`, the `shared` sets of its size, and the sets of the methods before
    it in the registry (`mkdt − krr_st`), where the rows hold them. `scratch` has no m: every size is compared
    with it."""
    from ..methods import METHODS as DISTILLATION_METHODS

    subjects = list(DISTILLATION_METHODS)
    out = {}
    for key, methods in values_by_seed(rows).items():
        for (method, m, arch), scores in methods.items():
            if method not in subjects:
                continue
            pairs = {}  # row name -> (baseline's scores, its name where the row stands for several)
            for other in (*ALSO_COMPARED, *shared, *subjects[: subjects.index(method)]):
                baseline = methods.get((other, None if other == "scratch" else m, arch))
                if baseline is not None:
                    pairs[other] = (baseline, None)
            subsets = [(name, methods[(name, m, arch)]) for name in REAL_SUBSETS if (name, m, arch) in methods]
            if subsets:
                name, best = max(subsets, key=lambda item: sum(item[1].values()) / len(item[1]))
                pairs[BEST_SUBSET] = (best, name)
            for row, (baseline, against) in pairs.items():
                difference = paired_difference(scores, baseline, against)
                if difference is not None:
                    out.setdefault(key, {})[(m, arch, method, row)] = difference
    return out
