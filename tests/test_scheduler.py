"""The anytime search: after MLE-STAR's first pass, the schedule node runs the work item with the most expected gain
per second (refine a track again, draft another model as a new track, ensemble new members) until the search time
is spent or nothing is left, and says which in result.json and the report."""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from core.policy import Estimate, WorkItem, WorkOutcome
from graphs.ensembling import members_for
from graphs.context import RERUN_SHARE
from graphs.evaluate import Job, evaluate
from graphs.runner import open_run
from graphs.worklist import (blocks_left, candidates, choose, final_estimate, rerun_seconds, reserve_growth,
                             side_tracks, smaller, stale_key)
from plugins.heuristic.policy import HeuristicPolicy
from plugins.nodes.merge import make_merge
from plugins.nodes.submit import make_submit

ROOT = Path(__file__).resolve().parents[1]


def test_the_item_with_the_most_gain_per_second_that_fits_in_the_time_left_runs_next():
    refine, draft, ensemble = WorkItem(kind="refine", track="main"), WorkItem(kind="draft", card="svm"), \
        WorkItem(kind="ensemble")
    estimates = [Estimate(gain=0.02, seconds=20), Estimate(gain=0.012, seconds=6), Estimate(gain=0.05, seconds=40)]
    assert choose([refine, draft, ensemble], estimates, time_left=100) == (draft, estimates[1])
    # the ensemble would be worth most per second but does not fit; the draft expects nothing
    estimates = [Estimate(gain=0.02, seconds=20), Estimate(gain=0.0, seconds=1), Estimate(gain=0.5, seconds=40)]
    assert choose([refine, draft, ensemble], estimates, time_left=30) == (refine, estimates[0])
    assert choose([refine], [Estimate(gain=0.02, seconds=20)], time_left=10) is None


def test_the_heuristic_expects_less_from_a_kind_of_item_that_keeps_gaining_nothing_and_learns_its_cost(penguins):
    policy = HeuristicPolicy()
    item = WorkItem(kind="refine", track="main", facts={"head_score": 0.9, "head_seconds": 2.0, "blocks_left": 3,
                                                         "plans": 2, "workers": 2, "is_best": True})
    fresh = policy.estimate(penguins.ctx, item, [])
    assert fresh.gain > 0 and fresh.seconds > 0
    nothing = [WorkOutcome(item=item, gain=0.0, seconds=30.0)] * 3
    tired = policy.estimate(penguins.ctx, item, nothing)
    assert tired.gain < fresh.gain / 3 and tired.seconds > fresh.seconds
    paid_off = policy.estimate(penguins.ctx, item, [WorkOutcome(item=item, gain=0.05, seconds=5.0)])
    assert paid_off.gain > fresh.gain
    side = policy.estimate(penguins.ctx, item.model_copy(update={"track": "svm", "facts": {**item.facts,
                                                                                          "is_best": False}}), [])
    assert side.gain < fresh.gain  # a track that is not the best helps only through the ensemble


def test_a_block_refined_without_gain_is_offered_again_only_from_a_new_head(tmp_path):
    rc = open_run(ROOT / "examples" / "penguins" / "task.yaml", tmp_path / "out")
    card = rc.search.search(rc.ctx.card_query(), limit=1)[0]
    head = {"id": 7, "code": rc.fallback.write_initial(rc.ctx, card), "score": 0.95, "seconds": 1.5}
    state = {"best": head, "head": head, "tracks": {"main": head}, "cards": [card.model_dump()],
             "drafts": {"0": {**head, "label": card.name}}, "pool": [head]}
    left = blocks_left(state, "main", head)
    assert set(left) == {"preprocess#0", "model#0", "train#0"}
    state["stale"] = [stale_key("main", key, head) for key in left]
    assert blocks_left(state, "main", head) == []
    kinds = [i.kind for i in candidates(rc, state)]
    assert "refine" not in kinds  # nothing left to refine from this head, and one card, already drafted
    newer = {**head, "id": 8, "score": 0.96}
    assert blocks_left({**state, "tracks": {"main": newer}}, "main", newer) == left


@pytest.mark.slow
def test_the_best_first_pass_draft_of_each_family_the_main_track_lacks_becomes_a_side_track(tmp_path):
    rc = open_run(ROOT / "examples" / "penguins" / "task.yaml", tmp_path / "out")
    cards = [{"name": n, "family": f} for n, f in (("linear", "linear"), ("lightgbm", "boosting"),
                                                   ("catboost", "boosting"), ("random_forest", "forest"),
                                                   ("svm", "svm"))]
    drafts = {str(i): {"id": i, "label": c["name"], "score": s, "code": f"# {c['name']}"}
              for i, (c, s) in enumerate(zip(cards, (0.712, 0.665, 0.671, 0.658, None)))}
    main = {"id": 9, "label": "linear + random_forest", "score": 0.72, "code": "# merged"}
    state = {"cards": cards, "drafts": drafts, "tracks": {"main": main}, "best": main}

    tracks = side_tracks(rc, state)

    # boosting's best draft (catboost beat lightgbm); the forest and the linear model are in the main track already,
    # and the svm draft failed
    assert tracks == {"catboost": drafts["2"]}
    assert side_tracks(rc, {**state, "tracks": {"main": main, **tracks}}) == {}
    # a refined head is named by its step: its models are the ones of the merge it grew from
    refined = {"id": 12, "label": "refine t1 k2 preprocess#0", "score": 0.73, "code": "# refined"}
    grown = {**state, "tracks": {"main": refined}, "best": refined,
             "stages": [{"stage": "merged", "label": "linear + random_forest", "attempt": 9}]}
    assert side_tracks(rc, grown) == {"catboost": drafts["2"]}


def test_a_merge_expected_to_outlast_the_search_time_left_is_not_started(tmp_path):
    rc = open_run(ROOT / "examples" / "penguins" / "task.yaml", tmp_path / "out")
    cards = rc.search.search(rc.ctx.card_query(), limit=2)
    drafts = {str(i): {"id": i, "label": card.name, "score": 0.9 - i / 10,
                       "code": rc.fallback.write_initial(rc.ctx, card)} for i, card in enumerate(cards)}
    left = rc.search_time_left()  # the clock starts here: penguins' budget, minus the final run's reserve

    quick = make_merge(rc)({"drafts": {k: {**d, "seconds": 1.0} for k, d in drafts.items()}})
    slow = make_merge(rc)({"drafts": {k: {**d, "seconds": left / 2} for k, d in drafts.items()}})

    assert len(quick["pool"]) == 3  # the two drafts and their merge
    assert len(slow["pool"]) == 2 and slow["best"]["label"] == cards[0].name  # both fits would not end in time


def test_after_the_first_pass_the_run_keeps_working_until_its_budget_is_spent(tmp_path):
    folder = tmp_path / "penguins"
    shutil.copytree(ROOT / "examples" / "penguins", folder, ignore=shutil.ignore_patterns("private"))
    spec = yaml.safe_load((folder / "task.yaml").read_text())
    spec["budget"] = {**spec["budget"], "total_seconds": 60, "run_timeout": 30, "models": 2, "plans": 2,
                      "outer_steps": 1, "ensemble_rounds": 1}
    spec.update(output=str(tmp_path / "out"), executor={"name": "local", "options": {"workers": 2}})
    (folder / "task.yaml").write_text(yaml.safe_dump(spec))
    done = subprocess.run([sys.executable, "-m", "core.run", str(folder / "task.yaml")], capture_output=True,
                          text=True, cwd=ROOT, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    search = result["search"]
    assert search["stopped"]["reason"] in ("budget", "exhausted")
    kinds = [w["item"]["kind"] for w in search["work"]]
    assert "draft" in kinds  # a model beyond the first pass's two
    first_two = {d["label"] for d in result["drafts"][:2]}
    assert any(w["item"]["card"] not in first_two for w in search["work"] if w["item"]["kind"] == "draft")
    assert all(w["seconds"] >= 0 and w["estimate"]["seconds"] > 0 for w in search["work"])
    if search["stopped"]["reason"] == "budget":  # the time was spent, or no item fitted in what was left
        assert search["stopped"]["search_left"] <= 1 or search["stopped"]["items_left"]
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Anytime search" in report and "the search ended because" in report
    assert result["final"]["status"] == "ok"
    selection = result["selection"]  # the final choice was made on rows the search never scored on
    assert selection["method"] == "search and selection rows" and selection["chosen"] == result["final"]["label"]
    assert "## Final choice" in report
    print(f"\nwall {result['wall_seconds']} s of {result['budget_seconds']} s; work: {kinds}; "
          f"stopped: {search['stopped']}")


def test_in_the_last_seconds_an_item_is_cut_to_one_batch_of_plans_or_one_ensemble_round(penguins):
    refine = WorkItem(kind="refine", track="main", facts={"head_score": 0.9, "head_seconds": 2.0, "plans": 4,
                                                           "workers": 2, "blocks_left": 3, "ablated": True})
    cut = smaller(refine, workers=2)
    assert cut.facts["plans"] == 2 and smaller(cut, workers=2) is None
    assert smaller(WorkItem(kind="ensemble", facts={"rounds": 3}), 2).facts["rounds"] == 1
    assert smaller(WorkItem(kind="draft", card="svm"), 2) is None
    done = [WorkOutcome(item=refine, gain=0.01, seconds=20.0)]
    policy = HeuristicPolicy()
    full, half = policy.estimate(penguins.ctx, refine, done), policy.estimate(penguins.ctx, cut, done)
    assert half.seconds < full.seconds and half.gain < full.gain


def test_the_reserve_for_the_final_rerun_follows_the_solution_the_final_choice_picks(tmp_path):
    # medicare-stay in the bench: the search's best was one model (2 s), the selection rows then chose a
    # four-member ensemble (10 s) and the run ended 3 s past its budget; reserving for the costliest finalist
    # instead left 14-16 s unused where the single model was chosen (doctor-visits, aids-australia)
    rc = open_run(ROOT / "examples" / "penguins" / "task.yaml", tmp_path / "out")
    single = {"id": 1, "code": "a", "score": 0.99, "seconds": 2.0, "folds": 3, "startup": 1.2, "holdout": 0.95}
    members = [{"id": i, "code": str(i), "score": 0.97, "seconds": 4.0, "folds": 3, "startup": 1.5}
               for i in range(2, 6)]
    ensemble = {"id": 9, "code": "e", "score": 0.985, "seconds": 2.0, "members": members, "holdout": 0.99}

    alone = final_estimate(rc, {"best": single})
    ensemble_chosen = final_estimate(rc, {"best": single, "finalists": [ensemble]})
    single_chosen = final_estimate(rc, {"best": single, "finalists": [{**ensemble, "holdout": 0.93}]})

    assert rc.data.selection_truth is not None  # penguins keeps selection rows
    assert alone == single_chosen == pytest.approx(rerun_seconds(rc, single))
    assert ensemble_chosen == pytest.approx(rerun_seconds(rc, ensemble)) and ensemble_chosen > 3 * alone
    # a member's start-up is paid once per rerun, its fit scaled from one fold's rows to every labelled row
    rows = (rc.ctx.n_train + rc.ctx.n_valid) / (min(rc.ctx.n_train, rc.task.budget.search_rows) * 2 / 3)
    assert rerun_seconds(rc, members[0]) == pytest.approx(1.5 + rows * (4.0 - 1.5) / 3)


def test_the_reserve_holds_a_costly_rerun_whole_and_keeps_nothing_for_one_over_its_share_of_the_budget(tmp_path):
    # digits-images in the bench: the reserve was capped at 20 s, the chosen CNN's rerun needed 33 s, so the rerun
    # was skipped and the 20 s kept for it went unused
    rc = open_run(ROOT / "examples" / "penguins" / "task.yaml", tmp_path / "out")
    total = rc.task.budget.total_seconds
    unestimated = rc.reserve_for(None)
    costly = (unestimated + 10.0) / 1.5  # needs more than the unestimated reserve, less than its share
    too_costly = RERUN_SHARE * total  # its rerun alone would take a third of the run

    assert rc.reserve_for(costly) == pytest.approx(1.5 * costly + 3.0)
    assert rc.reserve_for(costly) > unestimated
    assert rc.reserve_for(too_costly) == 5.0
    rc.final_seconds = too_costly
    assert rc.search_time_left() == pytest.approx(rc.clock.left() - 5.0, abs=0.5)


def test_an_item_whose_result_would_outgrow_the_final_reruns_reserve_is_not_started_in_the_last_seconds(tmp_path):
    # wilms-relapse in the bench: with 3 s of search left an ensemble (1 s expected) ran, became the final choice,
    # and its five members' full-data rerun took the run 7 s past its budget
    rc = open_run(ROOT / "examples" / "penguins" / "task.yaml", tmp_path / "out")
    single = {"id": 1, "code": "a", "score": 0.99, "seconds": 2.0, "folds": 3, "startup": 1.2}
    members = [{"id": i, "code": str(i), "score": 0.97, "seconds": 12.0, "folds": 3, "startup": 1.5}
               for i in range(2, 7)]
    state = {"best": single, "pool": members}
    rc.final_seconds = final_estimate(rc, state)
    ensemble, refine = WorkItem(kind="ensemble", facts={"rounds": 1}), WorkItem(kind="refine", track="main")
    quick = Estimate(gain=0.01, seconds=1.0)

    grows = reserve_growth(rc, state, ensemble, quick)
    same = reserve_growth(rc, state, refine, quick)  # the refined best reruns like the best
    ensemble_rerun = rerun_seconds(rc, {"members": members_for(rc, state), "seconds": 1.0})

    assert same == 0.0
    assert grows == pytest.approx(rc.reserve_for(ensemble_rerun) - rc.reserve()) and grows > 5
    assert choose([ensemble], [quick], time_left=3.0) is not None  # what the scheduler did before
    assert choose([ensemble], [quick], time_left=3.0, growth=[grows]) is None
    assert choose([ensemble], [quick], time_left=1.0 + grows, growth=[grows]) == (ensemble, quick)


def test_submit_skips_a_full_data_rerun_that_cannot_end_in_time_and_submits_the_search_stage_run(tmp_path):
    rc = open_run(ROOT / "examples" / "penguins" / "task.yaml", tmp_path / "out")
    [card] = rc.search.search(rc.ctx.card_query(), limit=1)
    [run] = evaluate(rc, [Job(rc.fallback.write_initial(rc.ctx, card), "draft", card.name, "default")])
    assert run["score"] is not None
    # the search-stage run seems to have taken longer than the whole budget: its rerun on every row cannot end in time
    slow = {**run, "seconds": 10.0 * rc.task.budget.total_seconds, "startup": 0.0}
    assert rerun_seconds(rc, slow) > rc.clock.left() + 0.05 * rc.task.budget.total_seconds

    started = time.time()
    final = make_submit(rc)({"best": slow})["final"]

    assert time.time() - started < 5  # nothing was run
    assert final["status"] == "ok" and final["fidelity"] == "search" and final["attempt"] == run["id"]
    assert (rc.task.output / "submission.csv").read_text() == (Path(run["workdir"]) / "submission.csv").read_text()
    nodes = [r["node"] for r in rc.store.attempts(rc.run_id)]
    assert "submit" not in nodes


def test_submit_still_reruns_on_every_row_when_the_search_ended_in_the_reserve_and_the_rerun_fits_the_grace(
        tmp_path):
    # medicare-stay in the bench: the last item ended 2 s into the reserve, 3 s were left, and a rerun expected to
    # take 2 s was skipped (it needed 5 s left), so a model fitted on fewer rows was submitted
    rc = open_run(ROOT / "examples" / "penguins" / "task.yaml", tmp_path / "out")
    [card] = rc.search.search(rc.ctx.card_query(), limit=1)
    [run] = evaluate(rc, [Job(rc.fallback.write_initial(rc.ctx, card), "draft", card.name, "default")])
    rc.clock.before = rc.clock.total - 2.0  # 2 s of the budget left, as after an item that overran the search
    grace = 0.05 * rc.task.budget.total_seconds
    assert rc.clock.left() < 5 and rerun_seconds(rc, run) < rc.clock.left() + grace

    final = make_submit(rc)({"best": run})["final"]

    assert final["status"] == "ok" and final["fidelity"] == "full" and final["attempt"] != run["id"]
    [rerun] = [a for a in rc.store.attempts(rc.run_id) if a["node"] == "submit"]
    assert rerun["status"] == "ok" and rerun["fidelity"] == "full"
    assert rc.clock.left() > -grace  # within the grace


def test_each_tracks_head_joins_the_ensemble_before_more_refinements_of_the_best(tmp_path):
    # wilms-relapse: by score alone the five members were all refinements of the linear model, and the LightGBM
    # track refined from 0.665 to 0.713 AUC never joined an ensemble
    rc = open_run(ROOT / "examples" / "penguins" / "task.yaml", tmp_path / "out")
    size = rc.task.strategy.ensemble_size
    linear = [{"id": i, "code": f"linear {i}", "score": 0.714 - i / 10_000} for i in range(size + 2)]
    lightgbm = {"id": 50, "code": "lightgbm", "score": 0.713}
    forest = {"id": 60, "code": "forest", "score": 0.694}
    ensemble = {"id": 70, "code": "blend", "score": 0.715, "members": linear[:2]}
    state = {"best": ensemble, "head": linear[0], "pool": [*linear, lightgbm, forest],
             "tracks": {"main": linear[0], "lightgbm": lightgbm, "random_forest": forest}}

    members = members_for(rc, state)

    assert [m["id"] for m in members[:3]] == [0, 50, 60]  # the heads, best first (an ensemble is no member)
    assert [m["id"] for m in members[3:]] == [1, 2][: size - 3]  # then the best of the rest
    assert len(members) == min(size, len(linear) + 2)
    assert [m["id"] for m in members_for(rc, {"best": linear[0], "pool": linear})] == list(range(size))
