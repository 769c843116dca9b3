"""The metric type: a named scoring function with its direction, what predictions it reads, and its task type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np

Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class Metric:
    """A metric as plugins register it.

    ``fn(y_true, y_pred)`` returns a float; ``y_pred`` holds labels or values, or for ``proba`` metrics the
    probability of the positive class (binary) or one column per class (multiclass, ``labels`` order).
    """

    name: str
    fn: Callable[..., float]
    direction: Direction
    task_type: Literal["classification", "regression"]
    proba: bool = False
    description: str = ""

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    def better(self, a: float | None, b: float | None) -> bool:
        """Whether score ``a`` beats ``b``; a missing score never beats anything and loses to any real one."""
        if a is None or not np.isfinite(a):
            return False
        if b is None or not np.isfinite(b):
            return True
        return a > b if self.maximize else a < b

    def gain(self, new: float, old: float) -> float:
        """Improvement of ``new`` over ``old`` in the favourable direction (positive means better)."""
        return (new - old) if self.maximize else (old - new)

    def best(self, scores):
        """The best of an iterable of scores (None entries ignored), or None."""
        real = [s for s in scores if s is not None and np.isfinite(s)]
        if not real:
            return None
        return max(real) if self.maximize else min(real)
