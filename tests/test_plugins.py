"""Plugins: real third-party packages found by entry point, listed, used from task.yaml, blocked, and reported by
name and package when broken; plugin objects registered in process; every hook documented.

In this module two misbehaving packages are installed next to the example one: ``mlestar-broken-plugin``
(entry point ``broken``, raises ImportError on import) and ``mlestar-raising-plugin`` (entry point ``raising``, whose
``register_metrics`` raises). They are removed from the path when the module ends, so no other test sees them.
"""

from __future__ import annotations

import inspect
from importlib import metadata
from pathlib import Path

import pandas as pd
import pytest

from core import hookspecs
from core.errors import PluginError, TaskError
from core.executor import ExecutorOptions, RunRequest, Status
from core.hookspecs import hookimpl
from core.loading import load_with_plugins
from core.local_executor import LocalExecutor
from core.metrics import Metric
from core.plugins import load_plugins
from core.registry import build_registry

TROUBLESOME = ("broken", "raising")
BROKEN_REASON = "ImportError: mlestar-broken-plugin needs the 'turbo_trees' package; pip install turbo-trees"

DIABETES_TASK = """\
name: diabetes
data:
  dir: diabetes
metric: max_error
policy:
  name: example_policy
  options: {temperature: 0.2}
retrieval: example_cards
plugins:
  disable: [broken, raising]
"""


@pytest.fixture(scope="module", autouse=True)
def troublesome_plugins(plugin_installer, example_plugin):
    with plugin_installer.installed("broken", "raising"):
        yield


def absolute_error_sum(y_true, y_pred) -> float:
    return float(sum(abs(t - p) for t, p in zip(y_true, y_pred)))


class MetricPlugin:
    """A plugin object of the kind a test or an embedding app registers in process."""

    def __init__(self, metric_name: str):
        self.metric = Metric(metric_name, absolute_error_sum, "minimize", "regression")

    @hookimpl
    def register_metrics(self, register):
        register(self.metric)


# --- listed ----------------------------------------------------------------------------------------------------

def test_plugins_command_lists_each_installed_plugin_with_package_version_and_hooks(cli, read_plugins_table):
    rows = read_plugins_table(cli("plugins").stdout)

    assert rows["example"] == {
        "package": "mlestar-example-plugin", "version": "0.3.1", "module": "mlestar_example_plugin",
        "hooks": "register_metrics, register_policies, register_search_backends", "status": "loaded",
    }
    assert rows["raising"]["package"] == "mlestar-raising-plugin"
    assert rows["raising"]["status"] == "loaded"  # it imports fine; its hook only fails when the registry is built
    assert {rows[name]["package"] for name in ("metrics", "local", "catalogue")} == {"mlestar"}


def test_plugins_command_shows_a_broken_plugin_as_failed_with_its_package_and_exits_2(cli, read_plugins_table):
    done = cli("plugins")
    rows = read_plugins_table(done.stdout)

    assert done.returncode == 2
    assert rows["broken"] == {"package": "mlestar-broken-plugin", "version": "0.0.1", "module": "mlestar_broken_plugin",
                              "hooks": "", "status": f"FAILED: {BROKEN_REASON}"}
    assert done.stderr.splitlines() == [
        (f"error: plugin 'broken' (package mlestar-broken-plugin 0.0.1) failed to load: {BROKEN_REASON}; "
         "fix or uninstall the package, or block it with MLESTAR_DISABLE_PLUGINS=broken")]


@pytest.mark.parametrize("disabled, first_line", [
    ("[]", "error: plugin 'broken' (package mlestar-broken-plugin 0.0.1) failed to load: ImportError: "),
    ("[broken]", ("error: plugin 'raising' (package mlestar-raising-plugin 0.0.2) raised in register_metrics: "
                  "RuntimeError: metric table not found")),
], ids=["import fails", "hook raises"])
def test_validate_refuses_a_task_while_a_plugin_is_broken_naming_its_package(
        disabled, first_line, tmp_path, make_competition, cli):
    make_competition("diabetes", dataset="diabetes")
    task_file = tmp_path / "task.yaml"
    task_file.write_text(DIABETES_TASK.replace("disable: [broken, raising]", f"disable: {disabled}"))

    done = cli("validate", str(task_file))

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(first_line)


# --- blocked ---------------------------------------------------------------------------------------------------

def test_the_environment_variable_blocks_plugins_before_they_are_imported(cli, read_plugins_table):
    done = cli("plugins", env={"MLESTAR_DISABLE_PLUGINS": "example, broken"})
    rows = read_plugins_table(done.stdout)

    assert rows["example"]["status"] == rows["broken"]["status"] == "blocked"
    assert rows["example"]["hooks"] == ""
    assert done.returncode == 0  # the broken module was never imported, so nothing failed
    assert done.stderr == ""


def test_plugins_disable_in_task_yaml_blocks_a_plugin_so_its_metric_is_unknown(tmp_path, make_competition):
    make_competition("diabetes", dataset="diabetes")
    task_file = tmp_path / "task.yaml"
    task_file.write_text(DIABETES_TASK.replace("[broken, raising]", "[broken, raising, example]"))

    with pytest.raises(TaskError, match=r"metric: unknown metric 'max_error'"):
        load_with_plugins(task_file)


def test_a_blocked_name_also_applies_to_plugin_objects_registered_in_process():
    host = load_plugins(disabled=[*TROUBLESOME, "in_process"], extra=[("in_process", MetricPlugin("total_error"))])

    assert host.infos["in_process"].blocked
    assert "total_error" not in build_registry(host).metrics


# --- used ------------------------------------------------------------------------------------------------------

def test_a_third_party_metric_backend_and_policy_are_usable_from_task_yaml(tmp_path, make_competition):
    make_competition("diabetes", dataset="diabetes")
    task_file = tmp_path / "task.yaml"
    task_file.write_text(DIABETES_TASK)

    task, registry = load_with_plugins(task_file)

    assert (task.metric, task.task_type, task.target) == ("max_error", "regression", "progression")
    assert registry.owner("metric", "max_error") == "example"
    assert registry.metrics["max_error"].fn([10.0, 20.0, 30.0], [11.0, 26.0, 30.0]) == 6.0

    backend = registry.get("search backend", task.retrieval.name, "test")(task.retrieval.options,
                                                                           cache_dir=tmp_path / "cards")
    [card] = backend.search(_card_query(task), limit=5)
    assert (card.name, card.source, card.task_types) == ("median_baseline", "example", ["regression"])
    run = LocalExecutor(ExecutorOptions(workers=1), out_dir=tmp_path / "out").run(
        RunRequest(code=card.example_code, input_dir=task.train.parent, timeout=60, id_column=task.id_column))
    train = pd.read_csv(task.train)["progression"]
    assert (run.status, run.reported_score) == (Status.OK, registry.metrics["max_error"].fn(
        train, [train.median()] * len(train)))

    policy = registry.get("policy", task.policy.name, "test")(task.policy.options, task=task, store=None,
                                                                registry=registry)
    assert type(policy).__name__ == "ExamplePolicy"
    assert policy.options == {"temperature": 0.2}
    assert policy.task is task


def _card_query(task):
    from core.cards import CardQuery

    return CardQuery(task_type=task.task_type, goal=task.goal, metric=task.metric)


def test_a_plugin_object_registered_in_process_contributes_like_an_installed_one():
    host = load_plugins(disabled=TROUBLESOME, extra=[("in_process", MetricPlugin("total_error"))])
    registry = build_registry(host)

    assert registry.metrics["total_error"].fn([1.0, 2.0], [2.0, 4.0]) == 3.0
    assert registry.owner("metric", "total_error") == "in_process"
    assert host.infos["in_process"].distribution == "(registered in process)"
    assert host.infos["in_process"].hooks == ["register_metrics"]
    assert "accuracy" in registry.metrics and "max_error" in registry.metrics  # installed plugins still load


def test_an_embedding_app_can_hand_its_own_plugin_object_to_the_task_loader(tmp_path, make_competition):
    make_competition("diabetes", dataset="diabetes")
    task_file = tmp_path / "task.yaml"
    task_file.write_text(DIABETES_TASK.replace("metric: max_error", "metric: total_error"))

    task, registry = load_with_plugins(task_file, extra_plugins=[("in_process", MetricPlugin("total_error"))])

    assert (task.metric, task.task_type) == ("total_error", "regression")
    assert registry.owner("metric", "total_error") == "in_process"


def test_load_plugins_builds_a_separate_host_each_time():
    with_object = load_plugins(disabled=TROUBLESOME, extra=[("in_process", MetricPlugin("total_error"))])
    without = load_plugins(disabled=TROUBLESOME)

    assert "in_process" in with_object.infos and "in_process" not in without.infos
    assert "total_error" not in build_registry(without).metrics


# --- reported --------------------------------------------------------------------------------------------------

def test_a_plugin_whose_hook_raises_is_named_with_its_package(tmp_path):
    host = load_plugins(disabled=["broken"])

    with pytest.raises(PluginError) as raised:
        build_registry(host)

    assert str(raised.value) == ("plugin 'raising' (package mlestar-raising-plugin 0.0.2) raised in register_metrics: "
                                 "RuntimeError: metric table not found")
    assert isinstance(raised.value.__cause__, RuntimeError)  # the plugin's own traceback is kept for its author


def test_a_plugin_that_fails_to_import_is_reported_by_name_not_swallowed():
    host = load_plugins(disabled=["raising"])

    assert host.infos["broken"].error == BROKEN_REASON
    [error] = host.errors
    assert str(error).startswith("plugin 'broken' (package mlestar-broken-plugin 0.0.1) failed to load")
    with pytest.raises(PluginError, match="plugin 'broken'"):
        host.raise_errors()


def test_two_plugins_registering_the_same_metric_name_is_an_error_naming_both():
    host = load_plugins(disabled=TROUBLESOME, extra=[("first", MetricPlugin("total_error")),
                                                     ("second", MetricPlugin("total_error"))])

    with pytest.raises(PluginError) as raised:
        build_registry(host)

    message = str(raised.value)
    assert message.startswith("metric 'total_error' is registered by both ")
    assert "plugin 'first' (package (registered in process) -)" in message
    assert "plugin 'second' (package (registered in process) -)" in message


def test_a_plugin_reusing_a_built_in_metric_name_is_an_error_naming_the_built_in_package():
    host = load_plugins(disabled=TROUBLESOME, extra=[("shadow", MetricPlugin("accuracy"))])

    with pytest.raises(PluginError) as raised:
        build_registry(host)

    assert f"plugin 'metrics' (package mlestar {metadata.version('mlestar')})" in str(raised.value)
    assert "plugin 'shadow'" in str(raised.value)


def test_a_misspelled_hook_name_is_reported_when_the_plugin_is_registered():
    class Misspelled:
        @hookimpl
        def register_metric(self, register):  # the hook is register_metrics
            pass

    host = load_plugins(disabled=TROUBLESOME, extra=[("misspelled", Misspelled())])

    [error] = host.errors
    assert str(error).startswith("plugin 'misspelled' implements an unknown hook")
    assert "register_metric" in str(error)


def test_registering_something_that_is_not_a_metric_names_the_plugin():
    class WrongType:
        @hookimpl
        def register_metrics(self, register):
            register("rmse")

    with pytest.raises(PluginError, match=r"plugin 'wrong_type' .* registered a metric that is not a"):
        build_registry(load_plugins(disabled=TROUBLESOME, extra=[("wrong_type", WrongType())]))


# --- documented ------------------------------------------------------------------------------------------------

HOOKSPECS = [f for _, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, "mlestar_spec")]


def test_the_hookspec_module_declares_every_register_hook():
    assert sorted(f.__name__ for f in HOOKSPECS) == ["register_executors", "register_metrics", "register_nodes",
                                                     "register_policies", "register_prompts",
                                                     "register_search_backends", "register_step_sources"]


@pytest.mark.parametrize("spec", HOOKSPECS, ids=lambda f: f.__name__)
def test_every_hookspec_has_a_docstring_saying_how_to_call_register(spec):
    doc = inspect.getdoc(spec)
    assert doc, f"{spec.__name__} has no docstring"
    assert "register(" in doc
    assert list(inspect.signature(spec).parameters) == ["register"]


def test_the_example_plugin_is_imported_from_its_installed_package_not_from_the_tests_folder():
    import mlestar_example_plugin

    installed = Path(mlestar_example_plugin.__file__)
    assert Path(__file__).parent not in installed.parents
    source = Path(__file__).parent / "thirdparty_plugin" / "example" / installed.name
    assert installed.read_text() == source.read_text()
    assert metadata.version("mlestar-example-plugin") == "0.3.1"


def test_every_built_in_plugin_module_is_declared_as_an_entry_point_in_pyproject():
    # a module missing here works in a checkout installed before it was dropped, and fails in a fresh install
    import tomllib

    declared = set(tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
                   ["project"]["entry-points"]["mlestar"].values())
    nodes = Path(__file__).resolve().parents[1] / "plugins" / "nodes"
    modules = {f"plugins.nodes.{p.stem}" for p in nodes.glob("*.py")
               if p.stem != "__init__" and "def register_nodes" in p.read_text()}
    assert modules - declared == set()


class ProtocolExecutorPlugin:
    """An executor plugin written to ``core.factories.ExecutorFactory`` alone: keyword-only out_dir, store and
    run_id, and nothing else."""

    def __init__(self):
        self.built: list[dict] = []

    @hookimpl
    def register_executors(self, register):
        def factory(options: dict, *, out_dir: Path, store=None, run_id: str = "") -> LocalExecutor:
            self.built.append({"out_dir": out_dir, "store": store, "run_id": run_id})
            return LocalExecutor(ExecutorOptions.from_dict(options), out_dir=out_dir, store=store, run_id=run_id)
        register("typed", factory)


def test_an_executor_plugin_typed_to_the_factory_protocol_runs_a_task_end_to_end(tmp_path, make_competition):
    from graphs.runner import run_task

    make_competition("diabetes", dataset="diabetes")
    task_file = tmp_path / "task.yaml"
    task_file.write_text("data: {dir: diabetes}\nmetric: rmse\nplugins: {disable: [broken, raising]}\n"
                         + "executor: {name: typed, options: {workers: 2}}\n"
                         + "budget: {total_seconds: 40, models: 2, plans: 1, outer_steps: 1, ensemble_rounds: 0}\n"
                         + "strategy: {anytime: false}\noutput: out\n")
    plugin = ProtocolExecutorPlugin()
    task, registry = load_with_plugins(task_file, extra_plugins=[("typed_executor", plugin)])

    assert run_task(task, registry, show_progress=False) == 0
    run = plugin.built[-1]
    assert run["store"] is not None and run["run_id"] and (task.output / "submission.csv").is_file()
