"""The hooks a plugin can implement, all in one place.

Every hook is a ``register_*(register)`` hook: the plugin calls ``register`` once per thing it provides, and the
host validates each registration in one place (``core.registry``). Plugins import ``hookimpl`` from ``core.hookspecs``.
"""

from __future__ import annotations

import pluggy

PROJECT = "mlestar"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_metrics(register):
    """Provide scoring metrics.

    Called once when the registry is built (before a task is validated). Call ``register(metric)`` with a
    ``core.metrics.Metric`` for each metric; its ``name`` is what ``metric:`` in task.yaml refers to. Two plugins
    registering the same name is an error naming both.
    """


@hookspec
def register_executors(register):
    """Provide executors: what runs a candidate script in a sandboxed working folder.

    Call ``register(name, factory)``; ``factory(options: dict, *, out_dir: Path, store: RunStore | None = None,
    run_id: str = "")`` (``core.factories.ExecutorFactory``) returns an object with the ``core.executor.Executor``
    interface. ``executor: {name: ..., options: {...}}`` in task.yaml
    picks one; ``local`` is built in.
    """


@hookspec
def register_policies(register):
    """Provide policies: the agent that plans and writes code, one method per role.

    Call ``register(name, factory)``; ``factory(options: dict, *, task: Task, store: RunStore | None, registry,
    run_id: str)`` (``core.factories.PolicyFactory``) returns an object with the ``core.policy.Policy`` interface (a factory should accept and ignore
    keyword arguments it does not use). ``policy:`` in task.yaml picks one by name.
    """


@hookspec
def register_search_backends(register):
    """Provide search backends that turn a task into model cards for the retrieve node.

    Call ``register(name, factory)``; ``factory(options: dict, *, cache_dir: Path)``
    (``core.factories.SearchBackendFactory``) returns an object with a
    ``search(query: core.cards.CardQuery, limit: int) -> list[core.cards.ModelCard]`` method. A backend that
    reads raw search results may also accept ``summarize=`` (a callable ``(results, limit) -> cards | None``:
    the policy's retrieval-summariser role), which the retrieve node then passes. ``retrieval:`` in task.yaml
    picks one by name.
    """


@hookspec
def register_nodes(register):
    """Provide graph nodes.

    Call ``register(node)`` with a ``core.nodes.NodeSpec``: its name, a ``make(ctx)`` that returns the node function
    ``state -> partial update``, and where it sits: ``replaces`` an existing node of that name, or goes ``after`` a
    node (inserted between that node and its successor). The default topology is built from the built-in node
    plugins; task.yaml's ``graph:`` key can also place a registered node.
    """


@hookspec
def register_prompts(register):
    """Provide or override the prompt templates of the LLM policies' roles.

    Call ``register(role, template)`` with a role name of ``core.policy.Policy`` (``write_initial``,
    ``plan_refinement``, ...) and the template text (``str.format`` fields as in the built-in prompt files under
    ``plugins/llm/prompts/``). A plugin's template replaces the built-in one; two plugins overriding the same role
    is an error naming both.
    """


@hookspec
def register_step_sources(register):
    """Provide step sources: where the step-wise RL environment (``rl.env.RefineStepEnv``) draws its states from.

    Call ``register(name, factory)``; ``factory(options: dict)`` (``core.factories.StepSourceFactory``) returns a
    list of ``rl.dataset.Step`` whose
    ``data_dir`` and ``truth`` exist on this machine, so that an action on each state can be run and scored. A
    factory raises ``core.errors.UserError`` for options it cannot use. ``recorded`` (run stores or a saved step
    dataset) is built in.
    """
