"""Step-wise GRPO: a real two-step run of SmolLM2 on CPU over recorded states writes a loadable adapter, the metrics
log, the reward curve and one rewards.jsonl line per action; plus the batch arithmetic, the duration weights and the
settings a CPU cannot honour."""

from __future__ import annotations

import json

import pytest

from rl.grpo import GRPOError, GRPOSettings, duration_weights
from rl.reward import Outcome, reward
from rl.traininglog import plot_curves



def panels_drawn(png) -> int:
    """How many curve panels a plot_curves PNG holds: each is 2.6 inches at 100 dpi (rl.traininglog)."""
    from PIL import Image

    with Image.open(png) as image:
        assert image.format == "PNG" and image.width == 700
        return round(image.height / 260)


def test_duration_weights_average_to_one_and_count_an_action_that_did_not_run_as_one_second():
    weights = duration_weights([0.0, 2.0, 4.0])

    assert weights == pytest.approx([1 / (7 / 3), 2 / (7 / 3), 4 / (7 / 3)])
    assert sum(weights) / len(weights) == pytest.approx(1.0)


def test_one_optimizer_step_consumes_one_generation_batch():
    settings = GRPOSettings(prompts_per_step=3, num_generations=2, micro_batch=2)

    assert settings.batch_shape(processes=1) == (2, 3)  # 6 completions: 3 passes of 2
    assert GRPOSettings(prompts_per_step=2, num_generations=4).batch_shape(processes=2) == (4, 1)
    with pytest.raises(GRPOError, match="do not split evenly over 4 processes"):
        settings.batch_shape(processes=4)


def test_vllm_is_refused_on_cpu():
    with pytest.raises(GRPOError, match="use_vllm needs a CUDA GPU"):
        GRPOSettings(use_vllm=True).for_device(cuda=False)


def test_on_cpu_bf16_follows_the_cpu_checkpointing_is_off_and_one_completion_passes_at_a_time():
    from core.local_llm import native_bf16

    settings = GRPOSettings(prompts_per_step=2, num_generations=4).for_device(cuda=False)

    assert (settings.bf16, settings.gradient_checkpointing, settings.micro_batch) == (native_bf16("cpu"), False, 1)
    assert GRPOSettings(bf16=False).for_device(cuda=False).bf16 is False  # a chosen setting stays
    assert settings.batch_shape(processes=1) == (1, 8)  # the 8 completions of a step: 8 passes, one optimizer step
    assert GRPOSettings(micro_batch=4).for_device(cuda=False).micro_batch == 4  # a chosen size stays


def test_a_loss_only_log_plots(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps({"step": s, "loss": 2.0 / s, "learning_rate": 1e-4}) + "\n"
                               for s in (1, 2, 3)))

    png = plot_curves(metrics, tmp_path / "curves.png")

    assert panels_drawn(png) == 1  # the loss; no reward or KL was logged


# --- real actions, a real run ------------------------------------------------------------------------------------

def step_runner(folder):
    """The project's local executor (two workers, sandboxed, cached) behind a structured-format step runner."""
    from core.plugins import load_plugins
    from core.registry import build_registry
    from rl.step import StepRunner

    registry = build_registry(load_plugins(env={}))
    return StepRunner(registry.executors["local"]({"workers": 2}, out_dir=folder), registry, "structured")


@pytest.mark.slow
def test_the_reward_function_runs_each_action_and_logs_its_reward_seconds_and_weight(step_splits, tmp_path):
    from rl.grpo import StepReward
    from rl.step import prompt_of

    # the recorded action that ran quickest: known to run, and well within its timeout on a busy machine
    state = min((s for s in step_splits["train"] if s.status == "ok" and s.op), key=lambda s: s.seconds)
    replies = [json.dumps(state.op), "I would tune the learning rate."]
    log = tmp_path / "rewards.jsonl"
    score = StepReward(step_runner(tmp_path / "exec"), log, duration_weighting=True)

    rewards = score(prompts=[prompt_of(state, "structured")] * 2,
                    completions=[[{"role": "assistant", "content": r}] for r in replies],
                    step=[state.model_dump_json()] * 2)

    ran, malformed = [json.loads(line) for line in log.read_text().splitlines()]
    assert (ran["status"], malformed["status"]) == ("ok", "malformed"), ran
    assert rewards == [ran["reward"], 0.0] and malformed["reward"] == 0.0
    assert ran["seconds"] > 0 and malformed["seconds"] == 0
    assert ran["plan"].endswith(f"(op: {state.op['op']} {json.dumps(state.op['args'], sort_keys=True)})")
    assert ran["step_id"] == state.step_id
    assert score.weights == duration_weights([ran["seconds"], 0.0])
    assert ran["weight"] == round(score.weights[0], 4)


@pytest.fixture(scope="module")
def grpo_run(step_splits, tmp_path_factory):
    """Two GRPO steps (one state, two actions each) from a saved rank-4 LoRA adapter, structured format."""
    from peft import LoraConfig, get_peft_model

    from core.local_llm import load_causal_lm, smollm2_dir
    from rl.grpo import train_grpo

    root = tmp_path_factory.mktemp("grpo")
    base = smollm2_dir()
    model, _ = load_causal_lm(base, device="cpu")
    start = root / "sft-adapter"
    get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                     task_type="CAUSAL_LM")).save_pretrained(str(start))
    # one torch thread: on a machine shared with other work, spinning OpenMP threads make generation many times slower
    settings = GRPOSettings(max_steps=2, prompts_per_step=1, num_generations=2, max_completion_length=32,
                            cpu_threads=1)
    adapter = train_grpo(base, start, step_splits["train"], step_runner(root / "exec"), "structured", root / "out",
                         settings)
    return {"base": base, "adapter": adapter, "out": root / "out", "steps": step_splits["train"]}


@pytest.mark.slow
def test_grpo_writes_an_adapter_that_goes_on_from_the_given_one_and_loads(grpo_run):
    from peft import PeftModel

    from core.local_llm import load_causal_lm

    model, _ = load_causal_lm(grpo_run["base"], adapter=grpo_run["adapter"], device="cpu")

    assert isinstance(model, PeftModel)
    assert json.loads((grpo_run["adapter"] / "adapter_config.json").read_text())["r"] == 4  # not a fresh rank-16
    assert not (grpo_run["adapter"] / "ref").exists()  # trl's frozen reference copy is not saved
    assert [p.name for p in grpo_run["out"].iterdir() if p.name.startswith(".")] == []  # no half-written folder


@pytest.mark.slow
def test_grpo_logs_reward_loss_and_kl_per_step_and_plots_the_reward_curve(grpo_run):
    records = [json.loads(line) for line in (grpo_run["out"] / "metrics.jsonl").read_text().splitlines()]
    per_step = [r for r in records if "reward" in r]

    assert [r["step"] for r in per_step] == [1, 2]
    for r in per_step:
        assert {"reward_std", "loss", "kl", "execution/wall_seconds"} <= set(r)
        assert 0.0 <= r["reward"] <= 1.0
        assert 0.3 < r["peak_rss_gb"] < 24  # at least the model's weights, at most this machine
    assert per_step[0]["peak_rss_gb"] <= per_step[1]["peak_rss_gb"]
    assert panels_drawn(grpo_run["out"] / "reward_curve.png") == 3  # reward ± std, loss, KL


@pytest.mark.slow
def test_each_action_is_logged_with_the_reward_its_outcome_earns_and_its_seconds(grpo_run):
    by_id = {s.step_id: s for s in grpo_run["steps"]}
    lines = [json.loads(line) for line in (grpo_run["out"] / "rewards.jsonl").read_text().splitlines()]

    assert sorted(line["step"] for line in lines) == [1, 1, 2, 2]  # 2 steps × 1 state × 2 actions
    for line in lines:
        state = by_id[line["step_id"]]
        outcome = Outcome(line["status"], line["score"], state.prev_score, state.context.maximize,
                          state.scale or 1.0, tuple(line["stages"]))
        assert line["reward"] == reward(outcome)
        ran = line["status"] not in ("malformed", "no_op", "repeat")
        assert (line["seconds"] > 0) == ran
        if line["status"] == "malformed":
            assert line["reward"] == 0.0
