"""A first pass with a failed draft stays one run: the debug round repairs it once every draft has ended, and the
nodes after it (merge, ensemble, schedule, check, submit) run once each, not once per draft branch."""

from __future__ import annotations

import sqlite3

import pytest
from pipeline_runs import TREE_SCRIPT, with_policy_plugin

from graphs.runner import run_task

CRASH = "raise RuntimeError('this draft crashes before it predicts')"


class BrokenForestPolicy:
    """A third party's policy whose random forest draft (its own decision tree script) crashes, and whose debugger
    removes the crash; every other card is the heuristic policy's."""

    name = "broken-forest"

    def write_initial(self, ctx, card):
        if card.name != "random_forest":
            return None
        return TREE_SCRIPT.replace("# [block: predict]", f"{CRASH}\n\n# [block: predict]")

    def debug(self, ctx, code, error):
        return code.replace(CRASH, "") if CRASH in code else None


@pytest.mark.slow
def test_a_failed_draft_is_debugged_after_every_draft_ended_and_the_run_does_not_fork(tmp_path):
    task, registry = with_policy_plugin(
        tmp_path, "penguins", BrokenForestPolicy(),
        {"models": 3, "plans": 1, "outer_steps": 1, "ensemble_rounds": 1, "debug_retries": 1, "total_seconds": 300},
        strategy={"anytime": False}, executor={"name": "local", "options": {"workers": 3}})
    assert run_task(task, registry, show_progress=False) == 0

    db = sqlite3.connect(task.output / "runs.sqlite")
    rows = db.execute("SELECT node, plan, status, started_at, finished_at FROM attempts ORDER BY attempt_id").fetchall()
    db.close()
    drafts = [r for r in rows if r[0] == "draft"]
    assert sorted(r[1] for r in drafts) == [f"initial solution: {card}" for card in ("lightgbm", "linear",
                                                                                        "random_forest")], drafts
    assert [r[2] for r in drafts if r[1].endswith("random_forest")] == ["error"]
    debug = [r for r in rows if r[0] == "draft:debug"]
    assert [r[2] for r in debug] == ["ok"], "the crashed draft was not repaired by the debugger"
    # the debug round starts once the last draft ended, and the merge once the debug round ended
    assert min(r[3] for r in debug) >= max(r[4] for r in drafts)
    merges = [r for r in rows if r[0] == "merge"]
    assert merges and min(r[3] for r in merges) >= max(r[4] for r in debug)

    log = (task.output / "run.log").read_text()
    for line in ("plugins.nodes.merge:", "plugins.nodes.check:", "plugins.nodes.submit:", "debug round 1:"):
        assert log.count(line) == 1, f"{line!r} logged {log.count(line)} times:\n{log}"
    assert "debug round 2" not in log  # one round allowed
