"""A trained policy behind an OpenAI-compatible endpoint: an adapter fitted to one action on a real recorded state,
merged by ``python -m core.train export``, served by a real ``transformers serve``, answers the pipeline's
plan_refinement through the ``openai`` policy and takes part in SFT as an expert next to the catalogue."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from llm_server import LLMServer

from core.local_llm import load_causal_lm, smollm2_dir
from core.plugins import load_plugins
from core.registry import build_registry
from plugins.llm import actions
from plugins.policy_hf import HFPolicy
from plugins.policy_openai import OpenAIPolicy
from rl.experts import expert_examples, plan_text
from rl.step import StepRunner, prompt_of, view_of

ROOT = Path(__file__).resolve().parents[1]
FMT = "structured"


def export(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core.train", "export", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def taught(one_demo_adapter, tmp_path_factory):
    """The one-demonstration adapter (tests/rl_fixtures.py) merged by ``core.train export`` and served for the
    module."""
    root = tmp_path_factory.mktemp("served-policy")
    adapter = one_demo_adapter["adapter"]
    (root / "train.yaml").write_text(f"data: {{stores: [{root}]}}\naction_format: {FMT}\noutput: {root / 'out'}\n")
    exported = export(str(root / "train.yaml"), "--adapter", str(adapter), "--out", str(root / "merged"))
    assert exported.returncode == 0, exported.stderr[-3000:]
    server = LLMServer(root / "merged", root / "serve.log")
    server.start()
    try:
        yield {"step": one_demo_adapter["step"], "action": one_demo_adapter["action"], "adapter": adapter,
               "merged": root / "merged", "server": server, "stdout": exported.stdout, "root": root}
    finally:
        server.stop()


def served_policy(taught, **options) -> OpenAIPolicy:
    server = taught["server"]
    return OpenAIPolicy({"model": server.model, "base_url": server.base_url, "action_format": FMT, "timeout": 120,
                         "retries": 1, "backoff": 0.2, **options})


@pytest.mark.slow
def test_export_writes_a_plain_model_folder_that_answers_like_base_plus_adapter(taught):
    merged = taught["merged"]
    assert (merged / "config.json").is_file() and (merged / "model.safetensors").is_file()
    assert (merged / "tokenizer.json").is_file() and not (merged / "adapter_config.json").exists()
    assert f"model: {merged}" in taught["stdout"] and "name: openai" in taught["stdout"]

    prompt = prompt_of(taught["step"], FMT)
    replies = []
    for model, tokenizer in (load_causal_lm(merged, device="cpu"),
                             load_causal_lm(smollm2_dir(), adapter=taught["adapter"], device="cpu")):
        inputs = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt",
                                               return_dict=True)
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=40, do_sample=False)
        replies.append(tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
    assert type(load_causal_lm(merged, device="cpu")[0]).__name__ == "LlamaForCausalLM"  # no peft wrapper
    assert replies[0] == replies[1]


@pytest.mark.slow
def test_the_served_model_plans_the_taught_action_in_the_pipelines_refinement_role(taught):
    step, view = taught["step"], view_of(taught["step"])
    policy = served_policy(taught, temperature=0.0)

    plans = policy.plan_refinement(step.context, step.code, step.block, step.ablation_view(), step.history, n=1)

    assert plans == [taught["action"].plan]
    assert policy.implement_plan(step.context, step.code, step.block, plans[0]) == \
        actions.block_of(view, taught["action"])
    # the same adapter through the in-process hf policy plans the same
    local = HFPolicy({"adapter": str(taught["adapter"]), "action_format": FMT})
    assert local.plan_refinement(step.context, step.code, step.block, step.ablation_view(), step.history, n=1) == plans


@pytest.mark.slow
def test_a_served_expert_adds_the_action_the_catalogue_pool_left_out(taught, tmp_path):
    registry = build_registry(load_plugins(env={}))
    runner = StepRunner(registry.executors["local"]({"workers": 2}, out_dir=tmp_path), registry, FMT)
    expert = served_policy(taught, temperature=0.7)

    rows = expert_examples([taught["step"]], runner, FMT, per_state=2, pool=1, policies=[expert], samples=2)

    by_source = {r["source"]: r for r in rows}
    assert set(by_source) == {"catalogue", "openai"}  # the pool's one catalogue action and the served model's
    assert by_source["openai"]["plan"] == plan_text(taught["action"])
    assert by_source["openai"]["status"] == "ok"


def test_export_without_an_adapter_is_one_line_and_exit_code_2(tmp_path):
    (tmp_path / "train.yaml").write_text(f"data: {{stores: [{tmp_path}]}}\noutput: {tmp_path / 'out'}\n")

    done = export(str(tmp_path / "train.yaml"))

    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: --adapter: {tmp_path / 'out' / 'adapter'} is not a PEFT adapter folder")
