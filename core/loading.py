"""Loading a task together with the plugins it asks for: the one way every entry point gets a Task and Registry."""

from __future__ import annotations

import difflib
import tempfile
from pathlib import Path

from core.errors import PluginError
from core.executor import ExecutorOptions
from core.plugins import load_plugins
from core.registry import Registry, build_registry
from core.task import Task, load_task, load_task_file


def load_with_plugins(task_path: str | Path, out: str | Path | None = None,
                      extra_plugins: list[tuple[str, object]] = ()) -> tuple[Task, Registry]:
    """Plugins (minus those task.yaml's ``plugins.disable`` blocks), then the validated task; every plugin choice
    in the task must name a registered plugin, and the executor must accept its options."""
    tf, _ = load_task_file(task_path)
    host = load_plugins(disabled=tf.plugins.disable, extra=extra_plugins)
    host.raise_errors()
    registry = build_registry(host)
    return load_task_with(task_path, registry, out), registry


def load_task_with(task_path: str | Path, registry: Registry, out: str | Path | None = None) -> Task:
    """The validated task, its plugin choices checked against plugins already loaded (``registry``)."""
    task = load_task(task_path, metrics=registry.metrics, output=Path(out).resolve() if out else None)
    where = str(task_path)
    registry.get("policy", task.policy.name, f"{where}: policy.name")
    registry.get("search backend", task.retrieval.name, f"{where}: retrieval.name")
    registry.get("executor", task.executor.name, f"{where}: executor.name")
    check_executor(task, registry, where)
    return task


def check_executor(task: Task, registry: Registry, where: str) -> None:
    """Build the task's executor once, in a scratch folder, and drop it: a typo in ``executor.options`` is refused
    when the task is loaded (so by ``validate``), not after the data have been prepared."""
    with tempfile.TemporaryDirectory(prefix="mlestar-executor-check-") as scratch:
        make_executor(registry, task.executor.name, task.executor.options, Path(scratch), f"{where}: executor")


def installed_registry() -> Registry:
    """What the installed plugins register (minus MLESTAR_DISABLE_PLUGINS); a broken plugin is one clear error."""
    host = load_plugins()
    host.raise_errors()
    return build_registry(host)


def make_executor(registry: Registry, name: str, options: dict | None, out_dir: Path, where: str):
    """The executor plugin ``name`` built with ``options``; bad options are one PluginError line naming ``where``."""
    factory = registry.get("executor", name, f"{where}.name")
    try:
        return factory(dict(options or {}), out_dir=out_dir, store=None)
    except (TypeError, ValueError) as exc:
        raise PluginError(f"{where}.options: {exc}{_option_hint(options or {}, str(exc))}") from None


def _option_hint(options: dict, message: str) -> str:
    """'; did you mean ...?' for an option the executor named in its complaint that is close to an option of the
    executor base class (every executor built on it takes ``ExecutorOptions``)."""
    known = list(ExecutorOptions.__dataclass_fields__)
    for key in map(str, options):
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        if key not in known and repr(key) in message and close:
            return f"; did you mean '{close[0]}'?"
    return ""
