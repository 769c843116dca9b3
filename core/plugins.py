"""Finds and loads plugins (entry-point group ``mlestar``), honouring block lists, and reports broken ones by name.

A plugin host is built per graph build, never process-wide, so an app that embeds several graphs gets one each.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import metadata
from typing import Iterable

import pluggy

from core import hookspecs
from core.errors import PluginError

ENTRY_POINT_GROUP = hookspecs.PROJECT
DISABLE_ENV = "MLESTAR_DISABLE_PLUGINS"


@dataclass
class PluginInfo:
    """What ``python -m core.run plugins`` prints about one plugin."""

    name: str
    distribution: str
    version: str
    module: str
    hooks: list[str] = field(default_factory=list)
    blocked: bool = False
    error: str | None = None


@dataclass
class PluginHost:
    """A pluggy manager with every loadable plugin registered, plus what was blocked or broken."""

    pm: pluggy.PluginManager
    infos: dict[str, PluginInfo]
    errors: list[PluginError]

    def raise_errors(self) -> None:
        if self.errors:
            raise self.errors[0]

    def info_for(self, plugin_name: str) -> PluginInfo:
        return self.infos.get(plugin_name) or PluginInfo(plugin_name, "?", "?", "?")

    def describe(self, plugin_name: str) -> str:
        info = self.info_for(plugin_name)
        return f"plugin '{plugin_name}' (package {info.distribution} {info.version})"


def blocked_names(disabled: Iterable[str] = (), env: dict | None = None) -> set[str]:
    """Names blocked by the environment variable and by task.yaml's ``plugins.disable``."""
    env = os.environ if env is None else env
    names = {n.strip() for n in env.get(DISABLE_ENV, "").split(",") if n.strip()}
    return names | {n.strip() for n in disabled if n.strip()}


def load_plugins(disabled: Iterable[str] = (), extra: Iterable[tuple[str, object]] = (),
                 env: dict | None = None) -> PluginHost:
    """Register every entry-point plugin not blocked, then ``extra`` plugin objects (tests, embedding apps)."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    blocked = blocked_names(disabled, env)
    infos: dict[str, PluginInfo] = {}
    errors: list[PluginError] = []
    for name in blocked:
        pm.set_blocked(name)  # before loading: a blocked plugin is never imported
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        info = PluginInfo(ep.name, dist, version, ep.value, blocked=ep.name in blocked)
        infos[ep.name] = info
        if info.blocked:
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as exc:  # noqa: BLE001 - any failure of third-party code is reported by name
            info.error = f"{type(exc).__name__}: {exc}"
            errors.append(PluginError(
                f"plugin '{ep.name}' (package {dist} {version}) failed to load: {info.error}; "
                f"fix or uninstall the package, or block it with {DISABLE_ENV}={ep.name}"))
    for name, plugin in extra:
        if name in blocked:
            infos[name] = PluginInfo(name, "(registered in process)", "-", _module_of(plugin), blocked=True)
            continue
        pm.register(plugin, name=name)
        infos[name] = PluginInfo(name, "(registered in process)", "-", _module_of(plugin))
    try:
        pm.check_pending()  # a misspelled hook name is a plugin bug worth reporting at once
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or "?"
        errors.append(PluginError(f"plugin '{name}' implements an unknown hook: {exc}"))
    for name, info in infos.items():
        plugin = pm.get_plugin(name)
        if plugin is not None:
            info.hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
            if not info.hooks:  # an entry point whose module lost its @hookimpl would otherwise vanish silently
                info.error = "implements no mlestar hook"
                errors.append(PluginError(f"plugin '{name}' (package {info.distribution} {info.version}) implements "
                                          f"no mlestar hook; check its @hookimpl functions, or block it with "
                                          f"{DISABLE_ENV}={name}"))
    return PluginHost(pm, infos, errors)


def _module_of(plugin: object) -> str:
    return getattr(plugin, "__name__", None) or type(plugin).__module__ + "." + type(plugin).__qualname__

