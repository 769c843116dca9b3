"""Intervals for learning figures: the mean reward over states with a bootstrap 95% interval, the same for a paired
difference between two policies on the same states, and the spread of a figure over training seeds."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 10_000
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap(values: Sequence[float], *, resamples: int = RESAMPLES, level: float = LEVEL,
              seed: int = 0) -> Interval:
    """The mean of ``values`` with its percentile bootstrap interval (states resampled with replacement)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("no values to bootstrap")
    means = np.random.default_rng(seed).choice(x, size=(resamples, x.size), replace=True).mean(axis=1)
    tail = (1 - level) / 2
    return Interval(float(x.mean()), float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail)))


def paired(a: Sequence[float], b: Sequence[float], **kwargs) -> Interval:
    """mean(a - b) over the same states, with its bootstrap interval (states resampled as pairs)."""
    if len(a) != len(b):
        raise ValueError(f"paired values need the same states: {len(a)} against {len(b)}")
    return bootstrap([x - y for x, y in zip(a, b)], **kwargs)


def seed_spread(figures: Sequence[float]) -> tuple[float, float]:
    """(mean, standard deviation) of one figure over training seeds (0 spread for a single seed)."""
    return statistics.fmean(figures), statistics.stdev(figures) if len(figures) > 1 else 0.0
