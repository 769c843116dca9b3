"""Registers the built-in ``local`` executor."""

from core.executor import ExecutorOptions
from core.hookspecs import hookimpl
from core.local_executor import LocalExecutor


def make_local_executor(options: dict, *, out_dir, store=None, run_id: str = ""):
    return LocalExecutor(ExecutorOptions.from_dict(options), out_dir=out_dir, store=store, run_id=run_id)


@hookimpl
def register_executors(register):
    register("local", make_local_executor)
