"""GRPO learns: on a state where one menu action earns the reward and every other reply earns nothing, a short CPU
run raises the policy's log-probability of that action and lowers the others'. The policy starts from an SFT
adapter fitted to all the state's options alike, so it samples each of them."""

from __future__ import annotations

import json
import math

import pytest

from core.local_llm import load_causal_lm, smollm2_dir
from plugins.llm import actions
from plugins.llm.replies import ReplyError
from rl.evaluate import reply_logprobs
from rl.step import StepResult, prompt_of, view_of

OPTIONS = 3


class OneActionRewarded:
    """A stand-in for the step runner (named as such, not the real reward): 1 for the chosen action, 0 for any other
    reply. It makes the learning signal known, so the test can check that the trainer follows it."""

    fmt = "structured"

    def __init__(self, op: dict):
        self.op = op
        self.replies: list[str] = []

    def run(self, steps, replies):
        self.replies += replies
        return [self._result(step, text) for step, text in zip(steps, replies)]

    def _result(self, step, text: str) -> StepResult:
        try:
            hit = actions.parse(text, view_of(step), "structured").op == self.op
        except ReplyError:
            hit = False
        return StepResult(reward=float(hit), status="ok" if hit else "malformed", score=None,
                          prev_score=step.prev_score, gain=None, seconds=0.0, stages=[], plan="", message="")


def option_logprobs(adapter, state, replies: list[str]) -> list[float]:
    model, tokenizer = load_causal_lm(smollm2_dir(), adapter=adapter, device="cpu")
    return reply_logprobs(model, tokenizer, prompt_of(state, "structured"), replies)


def shares(logps: list[float]) -> list[float]:
    """Each option's probability among the options (a softmax over their log-probabilities)."""
    top = max(logps)
    weights = [math.exp(x - top) for x in logps]
    return [w / sum(weights) for w in weights]


@pytest.mark.slow
def test_grpo_raises_the_log_probability_of_the_one_rewarded_action(step_splits, tmp_path, capsys):
    from rl.grpo import GRPOSettings, train_grpo
    from rl.sft import SFTSettings, train_sft

    state = min((s for s in step_splits["train"] if len(view_of(s).menu()) >= OPTIONS),
                key=lambda s: len(json.dumps(prompt_of(s, "structured"))))
    replies = [json.dumps({"op": m["op"], "args": m["args"]}) for m in view_of(state).menu()[:OPTIONS]]
    demos = [{"prompt": prompt_of(state, "structured"), "completion": [{"role": "assistant", "content": r}]}
             for r in replies]
    sft = train_sft(smollm2_dir(), demos, tmp_path / "sft",
                    SFTSettings(max_steps=3 * OPTIONS, learning_rate=2e-3, lora_r=8, lora_alpha=16, lora_dropout=0.0))
    before = option_logprobs(sft, state, replies)
    # not the option the SFT policy likes most, so a rise cannot come from a preference it already had; not one it
    # hardly ever samples either, or GRPO would never see it earn its reward
    target = sorted(range(OPTIONS), key=lambda i: before[i])[-2]
    assert 0.1 < shares(before)[target] < max(shares(before))
    reward = OneActionRewarded(json.loads(replies[target]))

    adapter = train_grpo(smollm2_dir(), sft, [state], reward, "structured", tmp_path / "grpo",
                         GRPOSettings(max_steps=4, prompts_per_step=1, num_generations=4, learning_rate=5e-4,
                                      lr_scheduler="constant", beta=0.0, temperature=1.0, max_completion_length=40,
                                      cpu_threads=1))
    after = option_logprobs(adapter, state, replies)

    with capsys.disabled():
        print("\nlog p(option) before / after GRPO: " + ", ".join(
            f"{'*' if i == target else ''}{b:.2f} / {a:.2f}" for i, (b, a) in enumerate(zip(before, after))))
    assert sum(r == replies[target] for r in reward.replies) >= 1  # it was sampled and rewarded
    assert after[target] > before[target] + 0.5
    assert shares(after)[target] > shares(before)[target] + 0.2
    assert all(after[i] < before[i] for i in range(OPTIONS) if i != target)
