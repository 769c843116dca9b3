"""The inner loop keeps the best of ALL K refinement attempts (MLE-STAR's ADK code never selects the last one)."""

from __future__ import annotations

import json
import re

import pytest
from pipeline_runs import TREE_SCRIPT as SCRIPT
from pipeline_runs import with_policy_plugin

from graphs.runner import run_task

# Only the last plan deepens the tree; the first two keep a single split, so only the K-th attempt can improve.
PLANS = {
    "keep one split but require 40 rows per leaf": "model = DecisionTreeClassifier(max_depth=1, min_samples_leaf=40, random_state=0)",
    "keep one split, entropy criterion": "model = DecisionTreeClassifier(max_depth=1, criterion='entropy', random_state=0)",
    "grow the tree to depth 4": "model = DecisionTreeClassifier(max_depth=4, random_state=0)",
}


class TreePolicy:
    """A third party's policy that only knows this one script; other roles fall back to the heuristic policy."""

    name = "tree"

    def write_initial(self, ctx, card):
        return SCRIPT

    def plan_refinement(self, ctx, code, block, ablation, history, n):
        tried = {h.plan for h in history}
        return [p for p in PLANS if p not in tried][:1]  # one at a time: each plan sees the earlier ones

    def implement_plan(self, ctx, code, block, plan):
        return PLANS.get(plan) if block.kind == "model" else None


@pytest.mark.slow
def test_the_best_refinement_is_kept_even_when_it_is_the_last_of_the_k_attempts(tmp_path):
    task, registry = with_policy_plugin(
        tmp_path, "penguins", TreePolicy(),
        {"models": 1, "plans": 3, "outer_steps": 1, "ensemble_rounds": 0, "total_seconds": 300},
        strategy={"anytime": False})
    assert run_task(task, registry, show_progress=False) == 0
    result = json.loads((task.output / "result.json").read_text())
    plans = result["plans"]
    assert [p["plan"] for p in plans] == list(PLANS)  # all K attempts ran, in order
    scores = [p["score"] for p in plans]
    initial = result["scores"]["best_initial"]
    assert scores[-1] > max(scores[:-1] + [initial]), f"setup: only the last plan should improve: {scores}"
    assert result["scores"]["outer_steps"] == [scores[-1]]
    assert re.search(r"max_depth=4", (task.output / "final_solution.py").read_text())


class ProsePolicy:
    """A policy (like a small LLM) whose plans parse but that cannot implement any of them."""

    name = "prose"

    def plan_refinement(self, ctx, code, block, ablation, history, n):
        return ["make the model better somehow"]

    def implement_plan(self, ctx, code, block, plan):
        return None

    def plan_ensemble(self, ctx, candidates, history):
        return "blend them cleverly"

    def implement_ensemble(self, ctx, candidates, plan):
        return None


@pytest.mark.slow
def test_plans_nobody_can_implement_do_not_spend_the_slots_the_heuristic_plans_instead(tmp_path):
    task, registry = with_policy_plugin(
        tmp_path, "penguins", ProsePolicy(),
        {"models": 2, "plans": 2, "outer_steps": 1, "ensemble_rounds": 1, "total_seconds": 300},
        strategy={"anytime": False})
    assert run_task(task, registry, show_progress=False) == 0
    result = json.loads((task.output / "result.json").read_text())
    ran = [p for p in result["plans"] if p["status"] == "ok"]
    assert len(ran) == 2 and all("(op:" in p["plan"] for p in ran)  # two heuristic plans filled the two slots
    assert any(p["plan"] == "make the model better somehow" and p["status"] == "not_implemented"
               for p in result["plans"])
    assert result["ensembles"] and result["ensembles"][0]["status"] == "ok"
