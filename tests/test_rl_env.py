"""The Gymnasium environment over single refinement steps: made by its id, an episode is one reply to one recorded
state, run and rewarded by the GRPO reward's code; states come from a list of steps or from a step source that the
built-in ``recorded`` plugin or a pip-installed third-party package registers."""

from __future__ import annotations

import json
import warnings

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env

from core.errors import PluginError, UserError
from core.hookspecs import hookimpl
from core.policy import PlanRecord
from core.plugins import load_plugins
from core.registry import build_registry
from rl.dataset import save_dataset
from rl.env import ENV_ID
from rl.reward import NEUTRAL, REFUSED, Outcome, reward
from rl.sources import steps_from_source
from rl.step import prompt_of, view_of


@pytest.fixture
def make_env():
    """``gymnasium.make`` of the environment with one worker; every env made is closed when the test ends."""
    made = []

    def make(**kwargs):
        env = gymnasium.make(ENV_ID, executor_options={"workers": 1}, **kwargs)
        made.append(env)
        return env
    yield make
    for env in made:
        env.close()


def drawn_ids(env, seed: int, episodes: int = 6) -> list[str]:
    first = env.reset(seed=seed)[1]["step_id"]
    return [first] + [env.reset()[1]["step_id"] for _ in range(episodes - 1)]


# --- one episode -----------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_an_episode_runs_a_catalogue_action_from_the_menu_and_scores_it_as_the_recorded_run_did(step_splits,
                                                                                                 make_env):
    state = max((s for s in step_splits["train"] if s.op and s.gain is not None), key=lambda s: s.gain)
    assert state.gain > 0  # the recorded run improved the score with this action
    env = make_env(steps=step_splits["train"])

    prompt, info = env.reset(options={"step_id": state.step_id})

    assert info["messages"] == prompt_of(state, "structured")
    assert prompt == "\n\n".join(m["content"] for m in info["messages"])
    assert (info["step_id"], info["task"], info["prev_score"]) == (state.step_id, "diabetes", state.prev_score)
    [choice] = [m for m in view_of(state).menu() if {"op": m["op"], "args": m["args"]} == state.op]
    assert json.dumps({"op": choice["op"], "args": choice["args"]}) in prompt

    observation, earned, terminated, truncated, info = env.step(json.dumps({"op": choice["op"],
                                                                            "args": choice["args"]}))

    assert (observation, terminated, truncated) == (prompt, True, False)
    assert (info["status"], info["message"]) == ("ok", "")
    assert info["score"] == pytest.approx(state.score)
    assert info["gain"] == pytest.approx(state.gain)
    assert info["plan"].startswith(choice["text"])
    assert info["stages"][-5:] == ["load_data", "preprocess", "model", "train", "predict"]
    assert "Final Validation Performance" in info["stdout_tail"]
    assert earned == reward(Outcome("ok", info["score"], state.prev_score, state.context.maximize, state.scale,
                                    stages=tuple(info["stages"])))
    assert earned > NEUTRAL
    with pytest.raises(gymnasium.error.ResetNeeded):
        env.step("{}")  # one step per episode


@pytest.mark.slow
@pytest.mark.parametrize("fmt, reply", [("structured", "I would tune the learning rate."),
                                        ("free", "Plan: tune the learning rate.\nmodel = make_model()")])
def test_a_malformed_reply_earns_nothing_and_runs_no_script(fmt, reply, step_splits, make_env):
    env = make_env(steps=step_splits["eval"], fmt=fmt)
    env.reset(seed=0)

    _, earned, terminated, _, info = env.step(reply)

    assert (earned, terminated, info["status"], info["score"], info["seconds"]) == (0.0, True, "malformed", None, 0.0)
    assert info["message"]
    assert info["stdout_tail"] == info["stderr_tail"] == ""


@pytest.mark.slow
def test_an_op_that_does_not_fit_the_block_is_malformed_and_one_that_changes_nothing_is_refused(step_splits,
                                                                                                make_env):
    # A GRPO run showed why the first is not a no-op: paid the neutral 0.6, invented args ({"encoding": "affored"})
    # out-earned real actions that lost a little.
    state = next(s for s in step_splits["train"] + step_splits["eval"] if s.block_kind == "preprocess")
    env = make_env(steps=[state], fmt="structured")
    cases = {'{"op": "set_preprocess", "args": {"encoding": "affored"}}': ("malformed", 0.0),
             '{"op": "set_preprocess", "args": {"RobustImpute": false}}': ("malformed", 0.0),
             '{"op": "set_train", "args": {"folds": 3}}': ("malformed", 0.0),  # an op for another kind of block
             '{"op": "set_preprocess", "args": {}}': ("no_op", REFUSED)}
    for reply, expected in cases.items():
        env.reset(seed=0)
        _, earned, _, _, info = env.step(reply)
        assert (info["status"], earned, info["seconds"]) == (*expected, 0.0), (reply, info["message"])
        assert info["message"]


@pytest.mark.slow
def test_an_action_already_in_the_states_tried_list_is_refused_without_running(step_splits, make_env):
    # The pipeline refuses a repeat and asks again, so the trainer must not pay it like a new action (11 of an
    # adapter's 16 replies in a diabetes run were repeats).
    state = next(s for s in step_splits["train"] + step_splits["eval"] if s.block_kind == "preprocess")
    option = view_of(state).menu()[0]
    reply = json.dumps({"op": option["op"], "args": option["args"]})
    tried = state.model_copy(update={"history": [*state.history, PlanRecord(
        plan=f"{option['text']} (op: {option['op']} {json.dumps(option['args'], sort_keys=True)})",
        score=state.prev_score, status="ok")]})
    env = make_env(steps=[tried], fmt="structured")

    env.reset(seed=0)
    _, earned, _, _, info = env.step(reply)

    assert (info["status"], earned, info["seconds"], info["score"]) == ("repeat", REFUSED, 0.0, None)
    assert "already tried" in info["message"]


# --- drawing states --------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_seeded_reset_draws_the_same_states_in_the_same_order(step_splits, make_env):
    states = step_splits["train"] + step_splits["eval"]
    env, other = make_env(steps=states), make_env(steps=states)

    drawn = drawn_ids(env, seed=11)

    assert drawn_ids(other, seed=11) == drawn_ids(env, seed=11) == drawn
    assert len(set(drawn)) > 1
    assert make_env(steps=states, seed=11).reset()[1]["step_id"] == drawn[0]  # the constructor's seed, first reset


@pytest.mark.slow
def test_gymnasiums_env_checker_accepts_the_environment_without_a_warning(step_splits, make_env):
    env = make_env(steps=step_splits["eval"])

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)  # its random text actions are malformed replies: nothing runs


@pytest.mark.slow
def test_close_removes_the_temporary_run_folder(step_splits):
    env = gymnasium.make(ENV_ID, steps=step_splits["eval"])
    runs = env.unwrapped.executor.runs_dir
    assert runs.is_dir()

    env.close()

    assert not runs.exists()


# --- step sources ----------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_the_recorded_source_reads_run_stores_and_saved_datasets_split_by_task(recorded_runs, step_splits, tmp_path,
                                                                                registry):
    ids = {name: [s.step_id for s in split] for name, split in step_splits.items()}
    saved = save_dataset(step_splits, tmp_path / "dataset")

    from_stores = steps_from_source(registry, "recorded", {"stores": [recorded_runs], "eval_tasks": ["iris"],
                                                           "split": "eval"})
    from_dataset = steps_from_source(registry, "recorded", {"dataset": str(saved), "split": "train"})
    everything = steps_from_source(registry, "recorded", {"dataset": str(saved)})

    assert [s.step_id for s in from_stores] == ids["eval"]
    assert [s.step_id for s in from_dataset] == ids["train"]
    assert [s.step_id for s in everything] == ids["train"] + ids["eval"]


@pytest.mark.slow
def test_a_third_party_packages_step_source_is_found_and_feeds_the_environment(recorded_runs, step_splits, make_env,
                                                                               plugin_installer, cli,
                                                                               read_plugins_table):
    model_states = sorted(s.step_id for split in step_splits.values() for s in split if s.block_kind == "model")
    with plugin_installer.installed("stepsource"):
        row = read_plugins_table(cli("plugins").stdout)["step_source"]
        env = make_env(source="model_blocks", source_options={"archive": str(recorded_runs)})

        drawn = drawn_ids(env, seed=5, episodes=10)
        _, earned, _, _, info = env.step("not an action")

    assert (row["package"], row["hooks"], row["status"]) == ("mlestar-step-source-plugin", "register_step_sources",
                                                             "loaded")
    assert [s.step_id for s in env.unwrapped.states] == model_states
    assert set(drawn) <= set(model_states) and len(set(drawn)) > 1
    assert (earned, info["status"], info["step_id"]) == (0.0, "malformed", drawn[-1])


def test_an_unknown_source_name_is_one_line_naming_the_sources_there_are():
    with pytest.raises(PluginError) as raised:
        gymnasium.make(ENV_ID, source="recordd")

    assert str(raised.value) == ("RefineStepEnv source: unknown step source 'recordd'; did you mean 'recorded'? "
                                 "(available: recorded; `python -m core.run plugins` lists what is loaded)")


@pytest.mark.parametrize("kwargs, message", [
    ({"source": "recorded"}, ("step source 'recorded': give exactly one of the options 'stores' (run stores, or "
                              "folders holding them) and 'dataset' (a saved step dataset folder)")),
    ({"source": "recorded", "source_options": {"dataset": "d", "splits": "eval"}},
     "step source 'recorded': unknown option 'splits' (known: stores, dataset, split, eval_tasks)"),
    ({"source": "recorded", "fmt": "json"}, "RefineStepEnv: fmt must be one of structured, free, not 'json'"),
    ({}, "RefineStepEnv: give either steps or a step source name (source=...), not both or neither"),
], ids=["no source options", "misspelled option", "unknown format", "neither steps nor source"])
def test_a_misconfigured_environment_is_one_clear_error_line(kwargs, message):
    with pytest.raises(UserError) as raised:
        gymnasium.make(ENV_ID, **kwargs)

    assert str(raised.value) == message


class StepSource:
    """A plugin object of the kind an embedding app registers in process."""

    def __init__(self, name: str, steps):
        self.name, self.steps = name, steps

    @hookimpl
    def register_step_sources(self, register):
        register(self.name, lambda options: self.steps)


def test_a_step_source_returning_something_else_than_steps_is_a_plugin_error_naming_the_plugin():
    registry = build_registry(load_plugins(env={}, extra=[("in_process", StepSource("rows", [{"step_id": "x"}]))]))

    with pytest.raises(PluginError) as raised:
        gymnasium.make(ENV_ID, source="rows", registry=registry)

    assert str(raised.value) == ("step source 'rows' of plugin 'in_process' (package (registered in process) -) "
                                 "returned list, not a list of rl.dataset.Step")


def test_a_plugin_reusing_the_built_in_source_name_is_an_error_naming_both():
    with pytest.raises(PluginError, match=r"^step source 'recorded' is registered by both plugin 'recorded' "
                                          r"\(package mlestar .*\) and plugin 'shadow'"):
        build_registry(load_plugins(env={}, extra=[("shadow", StepSource("recorded", []))]))
