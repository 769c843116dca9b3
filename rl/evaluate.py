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
