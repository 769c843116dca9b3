"""A run killed (SIGKILL) while any node of the graph runs, then resumed: no finished script runs again (the resumed
node gets what it had finished from the cache) and the submission is the one an uninterrupted run writes."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from pipeline_runs import attempts, core_run, kill_when, logged, task_copy

pytestmark = pytest.mark.slow

RECIPE = dict(models=3, plans=2, outer_steps=1, ensemble_rounds=2, total_seconds=900)


def test_a_run_killed_at_every_node_in_turn_loses_no_finished_script_and_submits_what_an_uninterrupted_run_does(
        tmp_path):
    # One script at a time, so each kill lands inside its node: after the node's first script finished, while its
    # next one runs. (The plans a node asks for at once depend on the workers, so both runs have one.)
    reference = task_copy(tmp_path / "reference", "biopsy-mlebench", workers=1, **RECIPE)
    done = core_run(str(reference))
    assert done.returncode == 0, done.stderr[-3000:]

    task = task_copy(tmp_path / "killed", "biopsy-mlebench", workers=1, **RECIPE)
    out = tmp_path / "killed" / "out"
    stops = ["draft", "merge", "ablate", "refine", "ensemble"]
    executed: dict[str, str] = {}  # cache key -> the node that ran it

    def no_script_ran_twice(rows: list[dict]) -> None:
        for r in rows:
            if not r["cached"]:
                assert r["cache_key"] not in executed, \
                    f"{r['node']} ran again a script that {executed[r['cache_key']]} had finished before a kill"
                executed[r["cache_key"]] = r["node"]

    before: list[dict] = []
    for i, node in enumerate(stops):
        earlier = [r["node"] for r in before].count(node)
        kill_when(task, out, lambda n: n.count(node) > earlier, args=("--resume",) if i else ())
        rows = attempts(out)[len(before):]
        assert node in {r["node"] for r in rows}, f"killed before {node} ran"
        no_script_ran_twice(rows)
        assert json.loads((out / "run.json").read_text())["status"] == "running"
        before = attempts(out)

    # the submit node reruns a chosen single solution as one script (as here): the kill lands while its first rerun
    # runs, half a second after the check node before it logged its line
    kill_when(task, out, lambda _: logged(out, "plugins.nodes.check:"), settle=0.5, args=("--resume",))
    rows = attempts(out)[len(before):]
    assert "submit" not in {r["node"] for r in rows}, "the submit node's rerun finished before the kill"
    no_script_ran_twice(rows)
    assert json.loads((out / "run.json").read_text())["status"] == "running"
    assert not (out / "submission.csv").exists()
    before = attempts(out)

    resumed = core_run(str(task), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    no_script_ran_twice(attempts(out)[len(before):])
    # a killed node runs again from its start: it asks again for the scripts it had finished and gets them from
    # the cache (a killed draft is a branch of its own: the drafts that had finished are not asked again)
    hits = {r["node"] for r in attempts(out) if r["cached"]}
    assert {"ablate", "refine", "ensemble"} <= hits, hits
    assert [r["node"] for r in attempts(out)].count("submit") == 1

    ours = pd.read_csv(out / "submission.csv")
    uninterrupted = pd.read_csv(tmp_path / "reference" / "out" / "submission.csv")
    pd.testing.assert_frame_equal(ours, uninterrupted, check_exact=False, rtol=0, atol=1e-9)
    result = json.loads((out / "result.json").read_text())
    reference_result = json.loads((tmp_path / "reference" / "out" / "result.json").read_text())
    assert result["final"]["score"] == pytest.approx(reference_result["final"]["score"])
