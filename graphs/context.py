"""What every node is built with: the task, its prepared data, the policy, executor, run store and the budget clock.

Live objects stay here, never in the checkpointed state."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from core.dataprep import PreparedData
from core.executor import Executor
from core.files import write_atomic
from core.metrics import Metric
from core.policy import Policy, TaskContext
from core.registry import Registry
from core.store import RunStore
from core.task import Task

RERUN_SHARE = 0.35  # the most of the budget a final rerun on every row may keep from the search


@dataclass
class Clock:
    """Wall-clock budget that survives a resume: seconds run ``run_id`` already spent are read from ``path`` (what
    another run left there does not count). It starts when it is first read (the graph's first node), not when it
    is built: an app may build a run long before."""

    total: float
    path: Path | None = None
    run_id: str = ""
    started: float | None = None
    before: float = 0.0

    def __post_init__(self) -> None:
        if self.path is not None and self.path.is_file():
            saved = json.loads(self.path.read_text())
            if saved.get("run_id") == self.run_id:
                self.before = float(saved.get("elapsed", 0.0))

    def elapsed(self) -> float:
        if self.started is None:
            self.started = time.monotonic()
        return self.before + time.monotonic() - self.started

    def left(self) -> float:
        return self.total - self.elapsed()

    def save(self) -> None:
        if self.path is not None:
            write_atomic(self.path, json.dumps({"elapsed": self.elapsed(), "run_id": self.run_id}))


@dataclass
class RunContext:
    task: Task
    registry: Registry
    metric: Metric
    data: PreparedData
    policy: Policy
    fallback: Policy  # the heuristic policy: steps in when the configured policy has nothing usable
    executor: Executor
    store: RunStore
    search: Any  # the search backend
    run_id: str
    clock: Clock
    workers: int = 1
    final_seconds: float | None = None  # the scheduler's estimate of the final full-data rerun (None: not yet)
    # roles the configured policy no longer answers, the heuristic does (graphs.evaluate.ask): role -> why
    handed_to_heuristic: dict[str, str] = field(default_factory=dict)
    # the validation truth (search rows, selection rows), read when the run starts: a script that rewrites the files
    # later (an unisolated one can reach them by an absolute path) does not change what this run scores against
    truth_rows: pd.DataFrame | None = field(default=None, repr=False)
    selection_rows: pd.DataFrame | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.truth_rows is None:
            self.truth_rows = pd.read_csv(self.data.truth)
        if self.selection_rows is None and self.data.selection_truth is not None:
            self.selection_rows = pd.read_csv(self.data.selection_truth)

    @property
    def ctx(self) -> TaskContext:
        return self.data.context

    def reserve(self) -> float:
        """Seconds kept back for the final full-data run and the submission: a fixed share until the scheduler has
        estimated that run from the chosen solution's own seconds, then that estimate plus a half and a margin."""
        return self.reserve_for(self.final_seconds)

    def reserve_for(self, final_seconds: float | None) -> float:
        """The reserve a final rerun expected to take ``final_seconds`` needs (None: not estimated yet): that estimate
        plus a half and 3 s, unless that is more than ``RERUN_SHARE`` of the budget. Such a rerun gets no reserve:
        the search spends the time, and submit runs it only if it still fits what is left. A reserve capped below
        the rerun's need kept time for a rerun that could not fit (digits-images: 20 s kept, a 33 s rerun skipped,
        the 20 s unused)."""
        total = self.task.budget.total_seconds
        if final_seconds is None:
            return min(self.task.budget.run_timeout * 1.5, max(20.0, 0.15 * total))
        need = 1.5 * final_seconds + 3.0
        return 5.0 if need > RERUN_SHARE * total else max(5.0, need)

    def search_time_left(self) -> float:
        return self.clock.left() - self.reserve()

    def run_timeout(self) -> float:
        """A script's timeout: the task's, but never past the search budget (at least a few seconds)."""
        return max(5.0, min(self.task.budget.run_timeout, self.search_time_left()))
