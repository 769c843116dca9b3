"""Scoring a policy on recorded states: it answers each state's prompt the way the ``hf`` policy does in a run (the
same class, so the same generation settings), and every answer is carried out and rewarded by the StepRunner."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from plugins.policy_hf import HFPolicy
from rl.dataset import Step
from rl.step import StepResult, StepRunner, prompt_of

MAX_TOKENS = {"structured": 64, "free": 384}


@dataclass
class Evaluation:
    """Mean reward (and its parts) of one policy over a set of states."""

    label: str
    results: list[StepResult] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    generate_seconds: float = 0.0

    @property
    def mean_reward(self) -> float:
        return statistics.fmean(r.reward for r in self.results) if self.results else 0.0

    def share(self, status: str) -> float:
        return sum(r.status == status for r in self.results) / len(self.results) if self.results else 0.0

    def summary(self) -> dict:
        improved = [r for r in self.results if r.gain is not None and r.gain > 0]
        return {"policy": self.label, "states": len(self.results), "mean_reward": round(self.mean_reward, 4),
                "malformed": round(self.share("malformed"), 3), "ok": round(self.share("ok"), 3),
                "improved": round(len(improved) / len(self.results), 3) if self.results else 0.0,
                "generate_seconds": round(self.generate_seconds, 1),
                "run_seconds": round(sum(r.seconds for r in self.results), 1)}


def hf_policy(model: str | Path | None, adapter: str | Path | None, fmt: str, temperature: float = 0.0) -> HFPolicy:
    options = {"max_tokens": {"plan_refinement": MAX_TOKENS[fmt]}, "temperature": temperature}
    if model is not None:
        options["model"] = str(model)
    if adapter is not None:
        options["adapter"] = str(adapter)
    return HFPolicy(options)


def evaluate(policy: HFPolicy, steps: list[Step], runner: StepRunner, label: str) -> Evaluation:
    """The policy's reply to every state (one greedy sample each), run and rewarded."""
    fmt = runner.fmt
    out = Evaluation(label)
    began = time.perf_counter()
    for step in steps:
        [completion] = policy.complete("plan_refinement", prompt_of(step, fmt), MAX_TOKENS[fmt], 1)
        out.replies.append(completion.text)
    out.generate_seconds = time.perf_counter() - began
    out.results = runner.run(steps, out.replies)
    return out


def sampled_rewards(policy: HFPolicy, steps: list[Step], runner: StepRunner, k: int) -> list[list[float]]:
    """Per state, the rewards of ``k`` replies from ``policy`` (sampled at its temperature; one greedy reply when
    that is 0), all run in one batch. The best of them is what the pipeline keeps of a policy asked for k plans."""
    fmt = runner.fmt
    replies = [[c.text for c in policy.complete("plan_refinement", prompt_of(step, fmt), MAX_TOKENS[fmt], k)]
               for step in steps]
    flat = [(step, text) for step, texts in zip(steps, replies) for text in texts]
    rewards = iter(r.reward for r in runner.run([s for s, _ in flat], [t for _, t in flat]))
    return [[next(rewards) for _ in texts] for texts in replies]


def reply_logprobs(model, tokenizer, prompt: list[dict], replies: list[str]) -> list[float]:
    """The log-probability ``model`` gives each whole reply to the chat ``prompt`` (the sum over the reply's tokens,
    its end-of-turn token included): how strongly it prefers one action to another, read without sampling."""
    import torch

    prefix = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                           return_dict=True)["input_ids"]
    out = []
    for reply in replies:
        ids = tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": reply}], tokenize=True,
                                            return_dict=True)["input_ids"]
        if ids[:len(prefix)] != prefix:
            raise ValueError("the chat template does not extend the prompt with the reply; cannot score the reply")
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids], device=model.device)).logits[0].float()
        logp = torch.log_softmax(logits[:-1], dim=-1)
        targets = torch.tensor(ids[1:], device=logits.device)
        out.append(float(logp[len(prefix) - 1:].gather(1, targets[len(prefix) - 1:, None]).sum()))
    return out
