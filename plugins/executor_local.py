"""Registers the built-in ``local`` executor."""

from pathlib import Path

from core.executor import ExecutorOptions
from core.hookspecs import hookimpl
from core.local_executor import LocalExecutor
from core.store import RunStore


def make_local_executor(options: dict, *, out_dir: Path, store: RunStore | None = None,
                        run_id: str = "") -> LocalExecutor:  # a core.factories.ExecutorFactory
    return LocalExecutor(ExecutorOptions.from_dict(options), out_dir=out_dir, store=store, run_id=run_id)


@hookimpl
def register_executors(register):
    register("local", make_local_executor)
