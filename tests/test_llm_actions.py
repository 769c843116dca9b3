"""The two action formats of a refinement step (plugins.llm.actions) on real recorded states, and the LLM policies
answering ``plan_refinement`` in them: a SmolLM2 ``hf`` policy with a real (untrained) PEFT LoRA adapter reads
exactly the prompt the step-wise RL trainer builds for that state, and what it answers is an action or None."""

from __future__ import annotations

import json

import pytest

from ablation import splice, split_blocks
from core.errors import PluginError
from core.store import RunStore
from space.ops import parse_plan
from plugins.heuristic.policy import HeuristicPolicy
from plugins.llm import actions
from plugins.llm.prompting import without_specs
from plugins.llm.replies import ReplyError
from plugins.policy_hf import HFPolicy
from plugins.policy_openai import OpenAIPolicy
from rl.step import prompt_of, view_of


def all_steps(step_splits):
    return [s for split in step_splits.values() for s in split]


def state_with_history(step_splits):
    """A recorded state of a model block that already had plans tried on it (its prompts list them)."""
    return max((s for s in all_steps(step_splits) if s.block_kind == "model"), key=lambda s: len(s.history))


def blocks_by_key(code: str) -> dict[str, str]:
    return {b.key: b.source for b in split_blocks(code)}


# --- the formats ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("reply, problem", [
    ('{"op": "delete_everything", "args": {}}', '"op" must be one of'),
    ('{"args": {"member": 0}}', '"op" must be one of'),
    ('{"op": "set_params", "args": [1, 2]}', '"args" must be a JSON object'),
    ('["set_params", {"member": 0}]', '"op" must be one of'),  # a list is no action: its inner object names no op
    ("[1, 2]", "no JSON object"),
    ("I would tune the learning rate.", "no JSON object"),
    ("", "empty"),
])
def test_a_structured_reply_that_names_no_known_op_with_object_args_is_a_reply_error(reply, problem):
    with pytest.raises(ReplyError, match=problem):
        actions.parse_structured(reply)


@pytest.mark.slow
def test_the_structured_prompt_stays_compact_and_offers_only_untried_catalogue_ops(step_splits):
    for step in all_steps(step_splits):
        [system, user] = prompt_of(step, "structured")
        assert system["role"] == "system" and user["role"] == "user"
        assert len(system["content"]) + len(user["content"]) < 2000
        menu = view_of(step).menu()
        assert menu, "every recorded block is one the heuristic wrote, so it has catalogue ops"
        tried = [parse_plan(h.plan) for h in step.history]
        for option in menu:
            assert (option["op"], option["args"]) not in tried
            op = actions.Action(plan=option["text"], op={"op": option["op"], "args": option["args"]})
            assert f"\n- {actions.render(op, 'structured')}\n" in user["content"]
        if step.history:
            assert "Tried: " in user["content"]


@pytest.mark.slow
def test_a_menu_op_parses_into_a_tagged_plan_that_changes_exactly_the_target_block(step_splits):
    for step in all_steps(step_splits):
        view = view_of(step)
        option = view.menu()[0]
        action = actions.parse(json.dumps({"op": option["op"], "args": option["args"]}), view, "structured")
        assert action.op == {"op": option["op"], "args": option["args"]}
        assert parse_plan(action.plan) == (option["op"], option["args"]) and action.plan.startswith(option["text"])
        before, after = blocks_by_key(step.code), blocks_by_key(actions.apply(view, action))
        assert before.keys() == after.keys()
        changed = [key for key in before if before[key] != after[key]]
        assert changed == [step.block_key]


@pytest.mark.slow
def test_a_free_reply_without_a_changed_block_is_a_reply_error(step_splits):
    step = all_steps(step_splits)[0]
    view = view_of(step)
    for reply in ("", "Plan: use more trees.", f"Plan: keep it.\n```python\n{without_specs(step.block_source)}\n```"):
        with pytest.raises(ReplyError):
            actions.parse(reply, view, "free")


@pytest.mark.slow
def test_render_then_parse_gives_the_action_back_in_both_formats(step_splits):
    for step in all_steps(step_splits):
        view = view_of(step)
        recorded = actions.Action(plan=step.plan, op=step.op)
        structured = actions.parse(actions.render(recorded, "structured"), view, "structured")
        assert structured.op == step.op and parse_plan(structured.plan) == (step.op["op"], step.op["args"])
        assert actions.parse(actions.render(structured, "structured"), view, "structured") == structured

        text = actions.render(actions.Action(plan=step.plan, block_source=step.new_block), "free")
        free = actions.parse(text, view, "free")
        assert free.plan == step.plan and without_specs(free.block_source) == without_specs(step.new_block)
        assert actions.render(free, "free") == text


@pytest.mark.slow
def test_a_planner_may_not_propose_an_action_already_tried_or_one_that_changes_nothing(step_splits):
    step = state_with_history(step_splits)
    view = view_of(step)
    name, args = parse_plan(step.history[0].plan)
    same_change = {key: value for key, value in args.items() if key != "move"}  # the move label writes no code
    fresh = view.menu()[0]
    for reply, problem in [
        (json.dumps({"op": name, "args": args}), "already tried"),
        (json.dumps({"op": name, "args": same_change}), "already tried"),
        (json.dumps({"op": "drop_member", "args": {"member": 7}}), "does not change the model block"),
        (json.dumps({"op": "set_preprocess", "args": {"pair_top": 4}}), "does not change the model block"),
        (f"Plan: {step.history[0].plan}\n```python\n{without_specs(step.new_block)}\n```", "already tried"),
    ]:
        with pytest.raises(ReplyError, match=problem):
            actions.parse_untried(reply, view, "free" if reply.startswith("Plan:") else "structured")
    proposed = json.dumps({"op": fresh["op"], "args": fresh["args"]})
    assert actions.parse_untried(proposed, view, "structured") == actions.parse(proposed, view, "structured")
    written = f"Plan: {step.plan}\n```python\n{without_specs(step.new_block)}\n```"
    assert actions.parse_untried(written, view, "free").plan == step.plan


# --- the policy option ----------------------------------------------------------------------------------------------

def test_an_unknown_action_format_is_one_clear_error():
    with pytest.raises(PluginError) as caught:
        HFPolicy({"action_format": "json"})
    assert str(caught.value) == "policy hf: option 'action_format' must be one of roles, structured, free, got 'json'"


def test_each_action_format_gives_the_planner_a_reply_budget_that_fits_its_answer():
    assert HFPolicy({}).max_tokens["plan_refinement"] == 192  # roles: a list of plan sentences
    assert HFPolicy({"action_format": "structured"}).max_tokens["plan_refinement"] == 96  # one JSON object
    assert HFPolicy({"action_format": "free"}).max_tokens["plan_refinement"] == 576  # a plan and a whole block
    assert HFPolicy({"action_format": "free", "max_tokens": {"plan_refinement": 160}}).max_tokens == \
        {**HFPolicy({}).max_tokens, "plan_refinement": 160}
    openai = OpenAIPolicy({"model": "m", "base_url": "http://127.0.0.1:9/v1", "action_format": "structured"})
    assert openai.max_tokens["plan_refinement"] == 96  # the option is LLMPolicy's: every LLM policy has it


@pytest.mark.slow
def test_in_the_structured_format_a_tagged_plan_is_implemented_by_the_heuristic_without_a_model_call(
        step_splits, tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    policy = HFPolicy({"action_format": "structured"}, store=store, run_id="implement")
    for step in all_steps(step_splits):
        block = policy.implement_plan(step.context, step.code, step.block, step.plan)
        assert block == HeuristicPolicy().implement_plan(step.context, step.code, step.block, step.plan)
        assert without_specs(block) == without_specs(step.new_block)  # what the recorded run ran
    assert policy.model is None and store.llm_calls("implement") == []


# --- a LoRA-adapted SmolLM2 answering in the formats ------------------------------------------------------------

@pytest.fixture(scope="module")
def lora_adapter(smollm2, tmp_path_factory):
    """A real PEFT LoRA adapter folder for SmolLM2, as a trainer saves one (untrained: it starts as the identity)."""
    from peft import LoraConfig, get_peft_model

    from core.local_llm import load_causal_lm

    base, _ = load_causal_lm(smollm2)
    folder = tmp_path_factory.mktemp("lora") / "adapter"
    get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])).save_pretrained(folder)
    return folder


def adapted_policy(adapter, fmt: str, max_tokens: int, store: RunStore) -> HFPolicy:
    return HFPolicy({"adapter": str(adapter), "action_format": fmt, "max_tokens": {"plan_refinement": max_tokens}},
                    store=store, run_id=fmt)


def check_calls(calls: list[dict], step, fmt: str, max_tokens: int, plans) -> None:
    """The first call asked exactly the trainer's prompt, and a retry asks it with the parse error after it (not the
    refused reply); every call is recorded; no plans means no usable reply, each failure with its parse error."""
    assert json.loads(calls[0]["prompt"]) == prompt_of(step, fmt)
    assert len(calls) == (1 if calls[0]["ok"] else 2)
    retry = json.loads(calls[-1]["prompt"])
    assert retry[:2] == prompt_of(step, fmt) and [m["role"] for m in retry[2:]] == ([] if len(calls) == 1 else ["user"])
    for call in calls:
        assert call["role"] == "plan_refinement" and call["model"] == "smollm2-135m-instruct+adapter"
        assert 0 < call["tokens_out"] <= max_tokens and call["tokens_in"] > 0
        assert call["ok"] or call["error"]
    assert (plans is None) == (not any(c["ok"] for c in calls))


@pytest.mark.slow
def test_a_lora_adapted_hf_policy_plans_a_catalogue_op_on_the_trainers_structured_prompt(
        lora_adapter, step_splits, tmp_path):
    from peft import PeftModel

    step = state_with_history(step_splits)
    store = RunStore(tmp_path / "runs.sqlite")
    policy = adapted_policy(lora_adapter, "structured", 48, store)
    plans = policy.plan_refinement(step.context, step.code, step.block, step.ablation_view(), step.history, 2)
    calls = store.llm_calls("structured")
    print("\n" + "\n---\n".join(c["reply"] for c in calls))
    assert isinstance(policy.model, PeftModel)
    check_calls(calls, step, "structured", 48, plans)
    assert sum(policy.stats["plan_refinement"].values()) == 1
    tried = [parse_plan(h.plan) for h in step.history]
    for plan in plans or []:
        assert parse_plan(plan) is not None and parse_plan(plan) not in tried
        block = policy.implement_plan(step.context, step.code, step.block, plan)
        target = next(b for b in split_blocks(step.code) if b.key == step.block_key)
        assert block != step.block_source and splice(step.code, target, block) != step.code
    assert len(store.llm_calls("structured")) == len(calls)  # implementing a catalogue op asks no model


@pytest.mark.slow
def test_a_lora_adapted_hf_policy_plans_and_writes_the_block_on_the_trainers_free_prompt(
        lora_adapter, step_splits, tmp_path):
    step = state_with_history(step_splits)
    store = RunStore(tmp_path / "runs.sqlite")
    policy = adapted_policy(lora_adapter, "free", 160, store)
    plans = policy.plan_refinement(step.context, step.code, step.block, step.ablation_view(), step.history, 1)
    calls = store.llm_calls("free")
    print("\n" + "\n---\n".join(c["reply"] for c in calls))
    check_calls(calls, step, "free", 160, plans)
    for plan in plans or []:
        block = policy.implement_plan(step.context, step.code, step.block, plan)
        target = next(b for b in split_blocks(step.code) if b.key == step.block_key)
        assert splice(step.code, target, block) != step.code
        reply = next(c["reply"] for c in calls if c["ok"])
        assert actions.parse(reply, view_of(step), "free") == actions.Action(plan=plan, block_source=block)
    assert len(store.llm_calls("free")) == len(calls)  # the block came with the plan: no second call


@pytest.mark.slow
@pytest.mark.parametrize("retry_temperature", [0.7, 0.0])
def test_a_greedy_policys_retry_shows_why_not_the_reply_and_samples(retry_temperature, smollm2, step_splits, tmp_path):
    """A greedy model asked nearly the same prompt again repeats the reply just refused (an adapter repeated an
    already tried action in 8 of 13 calls), and shown its reply it copies it; so a retry in an action format shows
    the trained prompt and why the reply was refused, and samples unless retry_temperature is 0."""
    import torch

    step = state_with_history(step_splits)
    store = RunStore(tmp_path / "runs.sqlite")
    policy = HFPolicy({"model": str(smollm2), "action_format": "structured", "retry_temperature": retry_temperature,
                       "max_tokens": {"plan_refinement": 24}}, store=store, run_id="retry")
    torch.manual_seed(0)
    policy.plan_refinement(step.context, step.code, step.block, step.ablation_view(), step.history, 1)
    first, retry = store.llm_calls("retry")  # the base model's first reply is no action, so it was retried
    assert not first["ok"]
    asked = json.loads(retry["prompt"])
    assert json.loads(first["prompt"]) == asked[:2] == prompt_of(step, "structured")
    assert [m["role"] for m in asked[2:]] == ["user"] and first["error"][:40] in asked[2]["content"]
    [greedy] = policy.complete("plan_refinement", asked, 24, 1, temperature=0.0)
    assert (retry["reply"] == greedy.text) == (retry_temperature == 0.0)
