"""The ``hf`` policy with SmolLM2-135M-Instruct in-process: roles answer (or return None after one retry) and are
recorded, several samples of one prompt come from one batched generation, a PEFT LoRA adapter saved to disk is
loaded through the policy and changes what the model says, and a plugin's prompt template is what the model reads."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from core.local_llm import load_causal_lm
from core.policy import AblationEffect, AblationView, BlockInfo, CandidateInfo, PlanRecord
from core.store import RunStore
from plugins.llm import usage_summary, usage_table
from plugins.policy_hf import HFPolicy

pytestmark = pytest.mark.slow

SCRIPT = '''import pandas as pd
from sklearn.ensemble import RandomForestClassifier

train = pd.read_csv("./input/train.csv")
valid = pd.read_csv("./input/valid.csv")
test = pd.read_csv("./input/test.csv")
FEATURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]

model = RandomForestClassifier(n_estimators=100, random_state=0)
model.fit(train[FEATURES].fillna(0), train["species"])

pd.DataFrame({"id": valid["id"], "species": model.predict(valid[FEATURES].fillna(0))}).to_csv(
    "val_predictions.csv", index=False)
pd.DataFrame({"id": test["id"], "species": model.predict(test[FEATURES].fillna(0))}).to_csv(
    "submission.csv", index=False)
print("Final Validation Performance: 0.9")
'''
TABLE = AblationView(base_score=0.97, rows=[AblationEffect(block="model#0", kind="model", action="simplify",
                                                           score=0.90, effect=0.07)])
MESSAGES = [{"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Name one model for tabular classification."}]


@pytest.fixture(scope="module")
def local(smollm2, penguins, tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("hf-calls") / "runs.sqlite")
    policy = HFPolicy({"max_tokens": {"summarize_ablation": 32, "plan_ensemble": 24, "implement_plan": 24},
                       "max_prompt_chars": 1500},
                      task=penguins.task, store=store, registry=penguins.registry, run_id="hf-test")
    return policy, store


def test_roles_answer_in_process_and_each_call_is_recorded(local, penguins):
    policy, store = local
    assert policy.model is None  # loaded by the first call, not when the policy is built
    block = BlockInfo(key="model#0", kind="model",
                      source="model = RandomForestClassifier(n_estimators=100, random_state=0)")
    candidates = [CandidateInfo(name="c0", score=0.95), CandidateInfo(name="c1", score=0.93)]
    answers = {
        "summarize_ablation": policy.summarize_ablation(penguins.ctx, TABLE),
        "plan_ensemble": policy.plan_ensemble(penguins.ctx, candidates, []),
        "implement_plan": policy.implement_plan(penguins.ctx, SCRIPT, block, "Use 300 trees."),
    }
    assert policy.model is not None
    calls = store.llm_calls("hf-test")
    for role, answer in answers.items():
        rows = [c for c in calls if c["role"] == role]
        assert len(rows) == (1 if rows[0]["ok"] else 2)  # one retry after an unusable first reply
        assert (answer is not None) == any(c["ok"] for c in rows)
        for row in rows:
            assert row["model"] == "smollm2-135m-instruct" and row["seconds"] > 0
            assert row["tokens_in"] > 0 and 0 < row["tokens_out"] <= policy.max_tokens[role]
    print("\n" + usage_table(usage_summary(store, "hf-test")))
    if answers["implement_plan"] is not None:
        compile(answers["implement_plan"], "block", "exec")


def test_several_samples_of_one_prompt_come_from_one_batched_generation(smollm2, penguins, tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    policy = HFPolicy({"temperature": 0.9, "max_tokens": 12}, store=store, run_id="batch")
    completions = policy.complete("plan_refinement", MESSAGES, 12, n=3)
    assert len(completions) == 3
    assert len({c.text for c in completions}) > 1  # sampled, not greedy copies
    prompt_tokens = len(policy.tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True,
                                                             return_dict=True)["input_ids"])
    assert [c.tokens_in for c in completions] == [prompt_tokens] * 3
    assert all(0 < c.tokens_out <= 12 for c in completions)

    block = BlockInfo(key="model#0", kind="model",
                      source="model = RandomForestClassifier(n_estimators=100, random_state=0)")
    history = [PlanRecord(plan="Use 300 trees instead of 100.", score=0.94, status="ok")]
    plans = policy.plan_refinement(penguins.ctx, SCRIPT, block, AblationView(base_score=0.97, text="The model matters most."), history, 3)
    calls = store.llm_calls("batch")
    first = [c for c in calls if len(json.loads(c["prompt"])) == 2]
    assert len(first) == 3 and len({c["started_at"] for c in first}) == 1  # one generation, three rows
    assert plans is None or (1 <= len(plans) <= 3 and "Use 300 trees instead of 100." not in plans)


def test_a_lora_adapter_saved_with_peft_is_loaded_through_the_policy(smollm2, tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model

    base, _ = load_causal_lm(smollm2)
    lora = get_peft_model(base, LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                                           init_lora_weights=False))  # random, not the no-op initialisation
    lora.save_pretrained(tmp_path / "adapter")
    del lora, base

    plain = HFPolicy({"max_tokens": 8}).complete("debug", MESSAGES, 8)
    adapted_policy = HFPolicy({"adapter": str(tmp_path / "adapter"), "max_tokens": 8})
    adapted = adapted_policy.complete("debug", MESSAGES, 8)
    assert isinstance(adapted_policy.model, PeftModel)
    assert adapted_policy.model_name == "smollm2-135m-instruct+adapter"
    assert adapted[0].text != plain[0].text


def test_a_plugins_prompt_template_is_what_the_model_reads(smollm2, penguins, tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    registry = SimpleNamespace(prompts={"summarize_ablation": "Results for {task}:\n{table}\nSummarise in a line."},
                               owner=lambda kind, name: "my-prompts")
    policy = HFPolicy({"max_tokens": 8, "parse_retries": 0}, store=store, registry=registry, run_id="override")
    policy.summarize_ablation(penguins.ctx, TABLE)
    [call] = store.llm_calls("override")
    user = json.loads(call["prompt"])[1]["content"]
    assert user.startswith("Results for Task: penguins (classification, tabular data).") and user.endswith("Summarise in a line.")


def test_roles_left_out_of_answer_roles_go_to_the_heuristic_without_loading_the_model(penguins, tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    policy = HFPolicy({"answer_roles": ["plan_refinement"]}, task=penguins.task, store=store,
                      registry=penguins.registry, run_id="hf-roles")
    block = BlockInfo(key="model#0", kind="model",
                      source="model = RandomForestClassifier(n_estimators=100, random_state=0)")
    assert policy.implement_plan(penguins.ctx, SCRIPT, block, "Use 300 trees.") is None
    assert policy.summarize_ablation(penguins.ctx, TABLE) is None
    assert policy.model is None and store.llm_calls("hf-roles") == []


@pytest.mark.parametrize("roles", [[], ["plan_refinment"], "plan_refinement"])
def test_answer_roles_must_name_known_roles(roles):
    from core.errors import PluginError

    with pytest.raises(PluginError, match="option 'answer_roles' must be a non-empty list of roles"):
        HFPolicy({"answer_roles": roles})
