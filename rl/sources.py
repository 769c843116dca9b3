"""Step sources: named providers of recorded states for the RL environment (hook ``register_step_sources``). This
module is also the built-in plugin that registers ``recorded``: the steps of run stores or of a saved step dataset."""

from __future__ import annotations

import os

from core.errors import PluginError, UserError
from core.hookspecs import hookimpl
from core.registry import Registry
from rl.dataset import SPLITS, Step, build_dataset, load_steps

RECORDED_OPTIONS = ("stores", "dataset", "split", "eval_tasks")


class SourceError(UserError):
    """A step source that cannot be used with the options given, or that gives no states."""


def recorded_steps(options: dict) -> list[Step]:
    """The ``recorded`` source. Options: ``stores`` (run stores, or folders holding them) or ``dataset`` (a folder
    written by ``rl.dataset.save_dataset``); ``split``: ``all`` (default), ``train`` or ``eval``; ``eval_tasks``
    (with ``stores``): the tasks held out as ``eval``."""
    unknown = sorted(set(options) - set(RECORDED_OPTIONS))
    if unknown:
        raise SourceError(f"step source 'recorded': unknown option {unknown[0]!r} "
                          f"(known: {', '.join(RECORDED_OPTIONS)})")
    if ("stores" in options) == ("dataset" in options):
        raise SourceError("step source 'recorded': give exactly one of the options 'stores' (run stores, or folders "
                          "holding them) and 'dataset' (a saved step dataset folder)")
    split = options.get("split", "all")
    if split not in ("all", *SPLITS):
        raise SourceError(f"step source 'recorded': split must be all, {' or '.join(SPLITS)}, not {split!r}")
    if "dataset" in options:
        if "eval_tasks" in options:
            raise SourceError("step source 'recorded': 'eval_tasks' applies to 'stores' only (a saved dataset is "
                              "already split)")
        names = SPLITS if split == "all" else (split,)
        return [s for name in names for s in load_steps(options["dataset"], name)]
    stores = options["stores"]
    stores = [stores] if isinstance(stores, (str, os.PathLike)) else stores
    splits = build_dataset(stores, eval_tasks=options.get("eval_tasks"))
    return [s for name in SPLITS for s in splits[name]] if split == "all" else splits[split]


@hookimpl
def register_step_sources(register):
    register("recorded", recorded_steps)


def steps_from_source(registry: Registry, name: str, options: dict | None = None,
                      where: str = "source") -> list[Step]:
    """The states the step source ``name`` gives for ``options``: one clear line (naming ``where`` the name was
    given) when the source is unknown or gives none, a plugin error naming the package when it gives no steps."""
    factory = registry.get("step source", name, where)
    try:
        steps = factory(dict(options or {}))
    except (TypeError, ValueError) as exc:
        raise SourceError(f"step source '{name}': options {options or {}}: {exc}") from None
    if not isinstance(steps, list) or not all(isinstance(s, Step) for s in steps):
        plugin = registry.host.describe(registry.owner("step source", name)) if registry.host else "its plugin"
        raise PluginError(f"step source '{name}' of {plugin} returned {type(steps).__name__}, not a list of "
                          f"rl.dataset.Step")
    if not steps:
        raise SourceError(f"step source '{name}' gave no states for options {options or {}}")
    return steps
