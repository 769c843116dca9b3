"""The whole agent as users and embedding apps run it: real scripts, real subprocesses, real checkpoints."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from core.hookspecs import hookimpl
from core.loading import load_with_plugins
from core.nodes import NodeSpec
from core.sandbox import bwrap_works
from core.submission import submission_problems
from graphs.build import describe_topology
from graphs.runner import run_task
from pipeline_runs import EXAMPLES, ROOT, attempts, core_run, kill_when, task_copy

pytestmark = pytest.mark.slow


def test_the_full_graph_turns_a_task_into_a_validated_submission_no_worse_than_the_best_draft(tmp_path):
    task = task_copy(tmp_path, "biopsy-mlebench", models=3, plans=2, outer_steps=1, ensemble_rounds=2,
                     total_seconds=400)
    done = core_run(str(task))
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "out"
    result = json.loads((out / "result.json").read_text())
    scores = result["scores"]
    assert result["direction"] == "maximize"
    assert scores["best_initial"] is not None and scores["final"] >= scores["best_initial"] - 0.02
    # the search keeps the best: merged and every outer step are at least the best initial solution
    assert scores["merged"] >= scores["best_initial"]
    assert all(s >= scores["merged"] for s in scores["outer_steps"])
    assert [s["stage"] for s in result["stages"]][:2] == ["initial", "merged"]
    assert result["refined_blocks"] and result["ablations"][0]["rows"]
    assert not submission_problems(out / "submission.csv", task.parent / "sample_submission.csv", "id")
    store = sqlite3.connect(out / "runs.sqlite")
    nodes = {n for (n,) in store.execute("SELECT DISTINCT node FROM attempts")}
    assert {"draft", "merge", "ablate", "refine", "submit"} <= nodes
    assert "Score by stage" in (out / "report.md").read_text()
    assert result["isolation"] == ("bwrap" if bwrap_works() else "none")  # what confined the scripts

    # final_solution.py reproduces the submission from ./input/ alone
    repro = tmp_path / "repro"
    shutil.copytree(out / "data" / "full", repro / "input")
    shutil.copyfile(out / "final_solution.py", repro / "final_solution.py")
    run = subprocess.run([sys.executable, "final_solution.py"], cwd=repro, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    ours = pd.read_csv(out / "submission.csv")
    again = pd.read_csv(repro / "submission.csv")
    pd.testing.assert_frame_equal(ours, again, check_exact=False, atol=1e-6)


def test_a_run_killed_with_sigkill_resumes_from_its_last_completed_node_without_redoing_drafts(tmp_path):
    task = task_copy(tmp_path, "penguins", models=3, plans=2, outer_steps=2, ensemble_rounds=1, total_seconds=400)
    out = tmp_path / "out"
    # kill once the drafts are checkpointed and the merge has started
    nodes = kill_when(task, out, lambda nodes: any(n.startswith(("merge", "ablate")) for n in nodes))
    drafts_before = sum(n.startswith("draft") for n in nodes)
    assert drafts_before >= 3
    assert json.loads((out / "run.json").read_text())["status"] == "running"

    refused = core_run(str(task))
    assert refused.returncode == 2 and "--resume" in refused.stderr

    resumed = core_run(str(task), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    db = sqlite3.connect(out / "runs.sqlite")
    drafts_after = db.execute("SELECT count(*) FROM attempts WHERE node LIKE 'draft%'").fetchone()[0]
    assert drafts_after == drafts_before, "finished drafts were run again after the resume"
    result = json.loads((out / "result.json").read_text())
    assert result["final"]["status"] == "ok"
    assert len(result["drafts"]) == 3


class CustomNodes:
    """A third party's plugin: its own retrieve (one fixed card) and an audit node inserted after merge."""

    @hookimpl
    def register_nodes(self, register):
        from retrieval.catalogue import CatalogueBackend

        def make_retrieve(rc):
            def retrieve(state):
                cards = CatalogueBackend({"families": ["neighbors"]}).search(rc.ctx.card_query(), limit=1)
                return {"cards": [c.model_dump() for c in cards]}
            return retrieve

        def make_audit(rc):
            def audit(state):
                return {"notes": [f"audit: best after merge is {state['best']['label']}"]}
            return audit

        register(NodeSpec("knn_only", make_retrieve, replaces="retrieve", description="only kNN"))
        register(NodeSpec("audit", make_audit, after="merge", description="notes the merged solution"))


def test_a_third_party_node_replaces_retrieve_and_an_inserted_node_runs_after_merge(tmp_path):
    task_path = task_copy(tmp_path, "penguins", models=2, plans=1, outer_steps=1, ensemble_rounds=0,
                          total_seconds=300)
    task, registry = load_with_plugins(task_path, extra_plugins=[("custom", CustomNodes())])
    topology = describe_topology(task, registry)
    assert "replaced by 'knn_only'" in topology and "merge -> audit" in topology and "inserted after merge" in topology
    assert run_task(task, registry, show_progress=False) == 0
    result = json.loads((task.output / "result.json").read_text())
    assert [d["label"] for d in result["drafts"]] == ["knn"]
    assert any(n.startswith("audit: best after merge is knn") for n in result["notes"])
    assert "audit" in result["seconds_by_node"]


def test_an_exhausted_budget_skips_to_the_submission_and_still_writes_a_valid_one(tmp_path):
    task = task_copy(tmp_path, "diamonds", models=4, plans=4, outer_steps=4, ensemble_rounds=5,
                     total_seconds=40, run_timeout=30)
    done = core_run(str(task))
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "out"
    result = json.loads((out / "result.json").read_text())
    assert result["final"]["status"] == "ok"
    assert len(result["scores"]["outer_steps"]) < 4  # the loops were cut short by the budget
    assert not submission_problems(out / "submission.csv", out / "data" / "full" / "sample_submission.csv", "id")


def embed_example():
    sys.path.insert(0, str(EXAMPLES))
    try:
        import embed
    finally:
        sys.path.remove(str(EXAMPLES))
    return embed


def test_one_compiled_app_runs_the_agent_as_a_subgraph_for_each_task_its_input_names(tmp_path):
    app = embed_example().build_parent()  # compiled once, before any task is known
    small = dict(models=2, plans=1, outer_steps=0, ensemble_rounds=0, total_seconds=300)
    for example, floor in (("penguins", 0.8), ("biopsy-mlebench", 0.9)):
        task = task_copy(tmp_path / example, example, **small)
        events, final = [], {}
        for namespace, mode, chunk in app.stream({"task": str(task)}, stream_mode=["custom", "values"],
                                                 subgraphs=True):
            if mode == "custom":
                events.append((namespace, chunk))
            elif not namespace:
                final = chunk
        assert final["summary"].startswith("agent finished: ok")
        assert final["final"]["score"] > floor
        assert (tmp_path / example / "out" / "submission.csv").is_file()  # each task's own output folder
        # the subgraph's progress reaches the parent as custom events, tagged with the subgraph's namespace
        assert any(ns and ns[0].startswith("agent") and e.get("node") == "submit" for ns, e in events)


def test_an_embedding_app_killed_mid_run_carries_on_from_its_own_sqlite_checkpoints_without_rerunning_a_script(
        tmp_path):
    task = task_copy(tmp_path, "penguins", models=3, plans=2, outer_steps=1, ensemble_rounds=1, total_seconds=300)
    out = tmp_path / "out"
    app = ("examples/embed.py",)
    cli = ("--checkpoints", str(tmp_path / "parent.sqlite"), "--thread", "t1")
    nodes = kill_when(task, out, lambda n: n.count("draft") >= 3 and "merge" in n, args=cli, command=app)
    assert "ablate" not in nodes

    again = subprocess.run([sys.executable, *app, str(task), *cli], cwd=ROOT, capture_output=True, text=True,
                           timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.strip().splitlines()[-1].startswith("agent finished: ok")
    rows = attempts(out)
    ran = [r["cache_key"] for r in rows if not r["cached"]]
    assert len(ran) == len(set(ran)), "a script that had finished before the kill ran again"
    assert sum(r["node"] == "draft" and not r["cached"] for r in rows) == 3
    assert {"ablate", "refine", "ensemble", "submit"} <= {r["node"] for r in rows}
    store = sqlite3.connect(out / "runs.sqlite")
    assert [r for (r,) in store.execute("SELECT run_id FROM runs")] == ["thread-t1"]  # one run, carried on


class BrokenPolicyPlugin:
    """A policy whose every script crashes (and which the heuristic debugger cannot repair)."""

    class Broken:
        name = "broken"

        def write_initial(self, ctx, card):
            return "import sys\nsys.exit('this solution always fails')\n"

    @hookimpl
    def register_policies(self, register):
        register("broken", lambda options, **kw: self.Broken())


def test_when_every_solution_fails_the_run_still_leaves_a_valid_baseline_submission_and_says_so(tmp_path):
    task_path = task_copy(tmp_path, "diamonds", models=2, plans=1, outer_steps=1, ensemble_rounds=1,
                          total_seconds=120)
    spec = yaml.safe_load(task_path.read_text())
    task_path.write_text(yaml.safe_dump({**spec, "policy": "broken"}))
    task, registry = load_with_plugins(task_path, extra_plugins=[("broken", BrokenPolicyPlugin())])
    assert run_task(task, registry, show_progress=False) == 1  # a baseline is not a success
    result = json.loads((task.output / "result.json").read_text())
    assert result["final"]["status"] == "baseline"
    sub = pd.read_csv(task.output / "submission.csv")
    assert not submission_problems(task.output / "submission.csv", task.output / "data" / "full" /
                                   "sample_submission.csv", "id")
    train = pd.read_csv(task.output / "data" / "full" / "train.csv")
    assert sub["price"].nunique() == 1 and sub["price"].iloc[0] == pytest.approx(train["price"].median())


def test_langgraph_json_names_a_factory_that_builds_the_graph_for_the_langgraph_cli(tmp_path, monkeypatch):
    spec = json.loads((ROOT / "langgraph.json").read_text())
    module_path, factory = spec["graphs"]["mlestar"].split(":")
    assert (ROOT / module_path).is_file()
    task = task_copy(tmp_path, "penguins")
    monkeypatch.setenv("MLESTAR_TASK", str(task))
    from graphs import studio

    graph = getattr(studio, factory)({})
    nodes = set(graph.get_graph().nodes)
    assert {"retrieve", "draft", "merge", "ablate", "refine", "ensemble", "submit"} <= nodes


def test_a_run_killed_in_the_anytime_search_resumes_it_without_drafting_a_model_twice(tmp_path):
    task = task_copy(tmp_path, "penguins", anytime=True, models=2, plans=2, outer_steps=1, ensemble_rounds=1,
                     total_seconds=60)
    out = tmp_path / "out"
    # kill once the scheduler has drafted a model beyond the first pass's two (and recorded the item)
    nodes = kill_when(task, out, lambda nodes: nodes.count("draft") >= 3, settle=1.0)
    assert nodes.count("draft") >= 3

    resumed = core_run(str(task), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    db = sqlite3.connect(out / "runs.sqlite")
    per_card = db.execute("SELECT plan, count(*) FROM attempts WHERE node = 'draft' GROUP BY plan").fetchall()
    assert per_card and all(n == 1 for _, n in per_card), per_card
    result = json.loads((out / "result.json").read_text())
    assert result["final"]["status"] == "ok" and result["search"]["stopped"]["reason"] in ("budget", "exhausted")
    assert any(w["item"]["kind"] == "draft" for w in result["search"]["work"])
    assert result["wall_seconds"] <= 60 * 1.2  # the budget clock carried over the kill
