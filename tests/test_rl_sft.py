"""Expert demonstrations and supervised fine-tuning, on the real recorded states of tests/rl_fixtures.py: diverse
catalogue actions that ran, in both action formats, and a LoRA adapter trained on them with trl's SFTTrainer on
SmolLM2 (CPU) that loads and generates."""

import time

import pytest
import torch
from transformers import TrainerCallback

from core.local_llm import load_causal_lm, smollm2_dir
from core.plugins import load_plugins
from core.registry import build_registry
from plugins.llm import actions
from plugins.policy_hf import HFPolicy
from rl.experts import candidates, expert_examples, is_recorded, most_diverse
from rl.sft import SFTError, SFTSettings, train_sft
from rl.step import StepRunner, prompt_of, view_of

PER_STATE = 2


class StepTimes(TrainerCallback):
    """The seconds each optimiser step took."""

    def __init__(self):
        self.seconds: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self.began = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self.began)


@pytest.fixture
def one_torch_thread():
    """Generation with one torch thread, as the hf policy does (two threads on two shared cores wait on each other:
    6 tokens took 25 s instead of 2)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=actions.FORMATS)
def fmt(request):
    return request.param


@pytest.fixture(scope="module")
def examples(fmt, step_splits, tmp_path_factory):
    """The expert examples of the training states in format ``fmt``."""
    registry = build_registry(load_plugins(env={}))
    executor = registry.executors["local"]({"workers": 2}, out_dir=tmp_path_factory.mktemp(f"experts-{fmt}"))
    return expert_examples(step_splits["train"], StepRunner(executor, registry, fmt), fmt, per_state=PER_STATE)


def test_farthest_first_picks_the_plan_least_like_those_already_chosen():
    plans = ["raise the learning rate of the booster", "raise the learning rate of the booster a little",
             "add log features of the skewed columns", "raise the number of booster rounds"]
    assert most_diverse(plans, 2, start=0) == [0, 2]
    assert most_diverse(plans, 3, start=1) == [1, 2, 3]
    assert most_diverse(plans, 9) == [0, 2, 3, 1]  # no more than there are


@pytest.mark.slow
def test_expert_examples_are_distinct_well_formed_actions_that_ran(fmt, examples, step_splits):
    steps = {s.step_id: s for s in step_splits["train"]}
    assert {e["step_id"] for e in examples} == set(steps)  # every training state got demonstrations
    for step_id, step in steps.items():
        rows = [e for e in examples if e["step_id"] == step_id]
        assert 1 <= len(rows) <= PER_STATE
        assert len({r["plan"] for r in rows}) == len(rows)
        for row in rows:
            assert row["status"] == "ok" and 0.2 <= row["reward"] <= 1.0  # it ran: at least a valid run's reward
            assert row["prompt"] == prompt_of(step, fmt)
            assert [m["role"] for m in row["prompt"] + row["completion"]] == ["system", "user", "assistant"]
            action = actions.parse(row["completion"][0]["content"], view_of(step), fmt)
            assert actions.apply(view_of(step), action) not in (None, step.code)
    assert any(len([e for e in examples if e["step_id"] == s]) > 1 for s in steps)  # several actions per state


@pytest.mark.slow
def test_each_state_starts_from_its_recorded_action_when_the_catalogue_offers_it(fmt, examples, step_splits):
    offered = [s for s in step_splits["train"] if any(is_recorded(s, c.action) for c in candidates(s, fmt, pool=16))]
    assert offered  # the heuristic run's own actions come from the same catalogue
    for step in offered:
        rows = [e for e in examples if e["step_id"] == step.step_id]
        recorded = [is_recorded(step, actions.parse(r["completion"][0]["content"], view_of(step), fmt)) for r in rows]
        assert recorded[0] or not any(recorded)  # first, unless its replay did not run this time


@pytest.mark.slow
def test_two_sft_steps_write_a_lora_adapter_that_loads_and_generates(fmt, examples, tmp_path, one_torch_thread):
    timer = StepTimes()
    shortest = sorted(examples, key=lambda e: len(str(e)))[:2]  # CPU time grows with the tokens
    out = train_sft(smollm2_dir(), shortest, tmp_path / "adapter", SFTSettings(max_steps=2, lora_r=4, lora_alpha=8),
                    callbacks=[timer])
    assert out == tmp_path / "adapter" and (out / "adapter_config.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]  # the temporary training folder is gone
    assert len(timer.seconds) == 2, timer.seconds  # step times are a benchmark's business (docs/rl.md), not a test's

    model, tokenizer = load_causal_lm(smollm2_dir(), adapter=out, device="cpu")
    assert type(model).__name__ == "PeftModelForCausalLM"
    prompt = tokenizer.apply_chat_template(shortest[0]["prompt"], add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
    with torch.no_grad():
        generated = model.generate(**prompt, max_new_tokens=6, do_sample=False)
    assert generated.shape[1] > prompt["input_ids"].shape[1]


@pytest.mark.slow
def test_an_adapter_fitted_to_one_demonstration_makes_the_hf_policy_plan_and_write_that_action(one_demo_adapter):
    # The whole path a trained adapter takes in a run: the pipeline's plan_refinement call builds the trainer's
    # prompt from its own arguments, the adapter answers, the reply parses into an untried action, and
    # implement_plan turns it into the block the demonstration would have produced. (Structured format: the free
    # one's longer prompt made 25 CPU steps take minutes; a LoRA adapter answering on the free prompt is covered by
    # tests/test_llm_actions.py.)
    step, taught = one_demo_adapter["step"], one_demo_adapter["action"]
    view = view_of(step)

    policy = HFPolicy({"adapter": str(one_demo_adapter["adapter"]), "action_format": "structured"})
    plans = policy.plan_refinement(step.context, step.code, step.block, step.ablation_view(), step.history, n=1)

    assert plans == [taught.plan]
    block = policy.implement_plan(step.context, step.code, step.block, plans[0])
    assert block == actions.block_of(view, taught)
    assert actions.apply(view, taught) not in (None, step.code)


def test_training_refuses_to_replace_a_folder_that_is_not_an_adapter(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(SFTError, match="not an adapter folder"):
        train_sft(smollm2_dir(), [], tmp_path / "notes")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"
