"""Everything the loaded plugins registered (metrics, executors, policies, search backends, nodes, step sources),
validated once.

Each plugin's hook is called on its own so that a registration, or an exception, is attributed to the plugin
that made it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable

from core.errors import PluginError
from core.factories import ExecutorFactory, PolicyFactory, SearchBackendFactory, StepSourceFactory
from core.metrics import Metric
from core.nodes import NodeSpec
from core.plugins import PluginHost

KINDS = ("metric", "executor", "policy", "search backend", "step source")


@dataclass
class Registry:
    metrics: dict[str, Metric] = field(default_factory=dict)
    executors: dict[str, ExecutorFactory] = field(default_factory=dict)
    policies: dict[str, PolicyFactory] = field(default_factory=dict)
    search_backends: dict[str, SearchBackendFactory] = field(default_factory=dict)
    step_sources: dict[str, StepSourceFactory] = field(default_factory=dict)
    prompts: dict[str, str] = field(default_factory=dict)  # role -> template overriding the built-in prompt file
    nodes: list[tuple[NodeSpec, str]] = field(default_factory=list)  # (node, plugin name)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> plugin name
    host: PluginHost | None = None

    def table(self, kind: str) -> dict[str, Any]:
        return {"metric": self.metrics, "executor": self.executors, "policy": self.policies,
                "search backend": self.search_backends, "step source": self.step_sources,
                "prompt": self.prompts}[kind]

    def get(self, kind: str, name: str, where: str) -> Any:
        """The registered item or a one-line error naming ``where`` (file and key) and the choices."""
        table = self.table(kind)
        if name in table:
            return table[name]
        close = difflib.get_close_matches(name, list(table), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise PluginError(f"{where}: unknown {kind} '{name}'{hint} (available: {', '.join(sorted(table)) or 'none'}; "
                          f"`python -m core.run plugins` lists what is loaded)")

    def owner(self, kind: str, name: str) -> str:
        return self.owners.get((kind, name), "?")


def build_registry(host: PluginHost) -> Registry:
    """Call every plugin's ``register_*`` hooks and collect what they register."""
    reg = Registry(host=host)

    def adder(kind: str, plugin: str):
        def add_named(name: str, factory: Callable[..., Any]) -> None:
            if not isinstance(name, str) or not callable(factory):
                raise PluginError(f"{host.describe(plugin)} registered an invalid {kind}: "
                                  f"expected register(name: str, factory: callable)")
            _claim(reg, host, kind, name, plugin)
            reg.table(kind)[name] = factory
        return add_named

    def add_prompt_for(plugin: str):
        def add_prompt(role: str, template: str) -> None:
            if not isinstance(role, str) or not isinstance(template, str):
                raise PluginError(f"{host.describe(plugin)} registered an invalid prompt: "
                                  f"expected register(role: str, template: str)")
            _claim(reg, host, "prompt", role, plugin)
            reg.prompts[role] = template
        return add_prompt

    def add_metric_for(plugin: str):
        def add_metric(metric: Metric) -> None:
            if not isinstance(metric, Metric):
                raise PluginError(f"{host.describe(plugin)} registered a metric that is not a core.metrics.Metric")
            _claim(reg, host, "metric", metric.name, plugin)
            reg.metrics[metric.name] = metric
        return add_metric

    def add_node_for(plugin: str):
        def add_node(node: NodeSpec) -> None:
            if not isinstance(node, NodeSpec):
                raise PluginError(f"{host.describe(plugin)} registered a node that is not a core.nodes.NodeSpec")
            reg.nodes.append((node, plugin))
        return add_node

    hooks = {
        "register_metrics": add_metric_for,
        "register_executors": lambda p: adder("executor", p),
        "register_policies": lambda p: adder("policy", p),
        "register_search_backends": lambda p: adder("search backend", p),
        "register_step_sources": lambda p: adder("step source", p),
        "register_nodes": add_node_for,
        "register_prompts": add_prompt_for,
    }
    for hook_name, make_register in hooks.items():
        for impl in getattr(host.pm.hook, hook_name).get_hookimpls():
            try:
                impl.function(register=make_register(impl.plugin_name))
            except PluginError:
                raise
            except Exception as exc:  # noqa: BLE001 - third-party code: name it, keep the cause
                raise PluginError(f"{host.describe(impl.plugin_name)} raised in {hook_name}: "
                                  f"{type(exc).__name__}: {exc}") from exc
    return reg


def _claim(reg: Registry, host: PluginHost, kind: str, name: str, plugin: str) -> None:
    prior = reg.owners.get((kind, name))
    if prior is not None and prior != plugin:
        raise PluginError(f"{kind} '{name}' is registered by both {host.describe(prior)} and {host.describe(plugin)}; "
                          f"block one with MLESTAR_DISABLE_PLUGINS")
    reg.owners[(kind, name)] = plugin
