"""The CLI's live view of a run: stage, best score so far, runs done/failed, elapsed time against the budget."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


class ProgressView:
    def __init__(self, rc, enabled: bool = True):
        self.rc = rc
        self.enabled = enabled and sys.stderr.isatty()
        self.best = None
        self.runs = self.failed = 0
        self.stage = "start"
        self.progress = Progress(TextColumn("[bold]{task.fields[stage]:<9}"), BarColumn(),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                                 console=Console(stderr=True), transient=False)
        self.bar = None

    def __enter__(self) -> "ProgressView":
        if self.enabled:
            self.progress.start()
            self.bar = self.progress.add_task("run", total=self.rc.task.budget.total_seconds,
                                              stage=self.stage, info="")
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.progress.stop()

    def update(self, mode: str, chunk) -> None:
        if mode != "custom" or not isinstance(chunk, dict):
            return
        if chunk.get("event") == "node_start":
            self.stage = chunk["node"]
        elif chunk.get("event") == "runs":
            self.runs += chunk["done"]
            self.failed += chunk["failed"]
        elif chunk.get("event") == "node_end" and chunk.get("best") is not None:
            self.best = chunk["best"]
        if self.bar is not None:
            best = f"{self.best:.5g}" if self.best is not None else "—"
            self.progress.update(self.bar, completed=min(self.rc.clock.elapsed(), self.rc.task.budget.total_seconds),
                                 stage=self.stage, info=f"best {self.rc.task.metric} {best} · runs {self.runs} "
                                                        f"({self.failed} failed) · "
                                                        f"{self.rc.clock.elapsed():.0f}/{self.rc.task.budget.total_seconds:.0f} s")
