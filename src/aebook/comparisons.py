"""The book's one rule for orders and ties between two measured things, over paired
gaps (one per training seed or per data split).

- `ahead`: A is ahead of B when the mean gap's two-sided t-interval (n - 1 degrees of
  freedom) lies above 0 (or above ``by``, for "ahead by more than ``by``").
- `level`: A and B are level within a margin declared before the numbers (with its
  reason in words) when the mean gap's 90% t-interval lies inside (-margin, margin):
  two one-sided tests at 5% each. A noisier measurement widens the interval, so it makes
  a tie harder to show, never easier; a failure to find a difference is not a tie.

A `Verdict` has a truth value, so it is a claim's ``holds``: ``v = ahead(gaps);
claim("A beats B on every seed's paired gap", v, **v.measured())``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Verdict:
    """The outcome of `ahead` or `level`, with the numbers it rests on."""

    holds: bool
    mean: float  # the mean paired gap
    low: float  # the t-interval's ends
    high: float
    n: int  # how many paired gaps
    confidence: float  # the interval's, e.g. 0.95
    margin: float | None = None  # `level`'s equivalence margin
    by: float = 0.0  # `ahead`'s lead to beat: the interval lies above it

    def __bool__(self) -> bool:
        return self.holds

    def measured(self) -> dict[str, float]:
        """The numbers for a claim's record: mean, the interval, n and the margin."""
        out = {"mean_gap": self.mean, "low": self.low, "high": self.high, "n": self.n}
        out |= {"margin": self.margin} if self.margin is not None else {}
        return out | ({"by": self.by} if self.by else {})


def _interval(
    gaps: Iterable[float], confidence: float
) -> tuple[float, float, float, int]:
    """(mean, low, high, n): the two-sided t-interval of the mean of ``gaps``."""
    g = np.asarray(list(gaps), dtype=np.float64).ravel()
    if len(g) < 2:
        raise ValueError(
            "a t-interval needs at least 2 paired gaps (seeds or splits), got "
            f"{len(g)}: run more seeds"
        )
    if not np.isfinite(g).all():
        raise ValueError(f"the gaps must be finite numbers, got {g.tolist()}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    mean = float(g.mean())
    half = float(stats.t.ppf(0.5 + confidence / 2, len(g) - 1)) * float(
        g.std(ddof=1) / math.sqrt(len(g))
    )
    return mean, mean - half, mean + half, len(g)


def ahead(gaps: Iterable[float], confidence: float = 0.95, by: float = 0.0) -> Verdict:
    """A is ahead of B: the mean of the paired gaps (A's advantage in each seed or
    split, (n,), n >= 2) has a two-sided ``confidence`` t-interval above 0, or above
    ``by`` for "ahead by more than ``by``" (a lead declared, like a margin, before
    the numbers)."""
    if not (math.isfinite(by) and by >= 0):
        raise ValueError(f"the lead `by` must be a finite number >= 0, got {by}")
    mean, low, high, n = _interval(gaps, confidence)
    return Verdict(bool(low > by), mean, low, high, n, confidence, by=float(by))


def on_splits(score: Callable[[slice], float], n: int, splits: int = 5) -> np.ndarray:
    """``score`` on each of ``splits`` contiguous, near-equal parts of ``n`` items
    (splits,): ``score`` takes the part's slice, e.g. ``lambda s: evaluate(model,
    test_x[s])``. Two models scored on the same parts give paired gaps for `ahead`
    and `level` when each was trained once."""
    if not 2 <= splits <= n:
        raise ValueError(f"need 2 <= splits <= the number of items ({n}), got {splits}")
    bounds = np.cumsum([0] + [len(p) for p in np.array_split(np.arange(n), splits)])
    return np.array([float(score(slice(a, b))) for a, b in zip(bounds, bounds[1:])])


def split_means(per_item: Iterable[float], splits: int = 5) -> np.ndarray:
    """The means of ``per_item`` (N,) over ``splits`` contiguous, near-equal parts
    (splits,): paired gaps for `ahead` and `level` from one score per test item (a
    difference per image between two models, say), when there is one training run."""
    x = np.asarray(list(per_item), dtype=np.float64).ravel()
    return on_splits(lambda s: x[s].mean(), len(x), splits)


def level(gaps: Iterable[float], margin: float, confidence: float = 0.90) -> Verdict:
    """A and B are level within ``margin``: the mean paired gap's ``confidence``
    t-interval (90%: two one-sided tests at 5%) lies inside (-margin, margin). Declare
    the margin, and why, before looking at the gaps."""
    if not margin > 0:
        raise ValueError(f"the equivalence margin must be positive, got {margin}")
    mean, low, high, n = _interval(gaps, confidence)
    return Verdict(
        bool(-margin < low and high < margin), mean, low, high, n, confidence, margin
    )
