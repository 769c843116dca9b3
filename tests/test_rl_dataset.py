"""The step dataset, built from run stores that real (short) pipeline runs wrote: what a step holds, deduplication,
the split by task, and the saved formats."""

import json
import sqlite3

import pytest
from datasets import load_from_disk

from ablation import split_blocks
from rl.dataset import DatasetError, build_dataset, load_steps, save_dataset, steps_from_store

pytestmark = pytest.mark.slow


def test_every_recorded_refinement_step_becomes_a_state_action_outcome_row(recorded_runs):
    store = recorded_runs / "diabetes" / "runs.sqlite"
    steps = steps_from_store(store)
    db = sqlite3.connect(store)
    refine_rows = db.execute("SELECT attempt_id, parent_id, score, status FROM attempts WHERE node='refine'").fetchall()
    assert steps and len(steps) == len(refine_rows)
    for step in steps:
        attempt_id, parent_id, score, status = next(r for r in refine_rows if r[0] == step.attempt_id)
        parent_code, parent_score = db.execute("SELECT code, score FROM attempts WHERE attempt_id=?",
                                               (parent_id,)).fetchone()
        assert step.code == parent_code and step.prev_score == pytest.approx(parent_score)
        assert step.block_source in step.code
        assert any(b.key == step.block_key and b.source == step.block_source for b in split_blocks(step.code))
        assert step.new_block != step.block_source
        assert step.status == status and step.score == score
        assert step.context.name == "diabetes" and not step.context.maximize  # rmse
        if step.score is not None:
            assert step.gain == pytest.approx(step.prev_score - step.score)  # lower is better: a fall is a gain
        assert step.op is not None and step.op["op"] in step.plan  # heuristic plans carry their catalogue op
        assert step.ablation.startswith("Base validation score")
        assert step.timeout > 0
        assert json.loads(step.model_dump_json())["task"] == "diabetes"


def test_later_steps_see_the_plans_tried_before_them_on_the_same_state_with_their_scores(recorded_runs):
    steps = steps_from_store(recorded_runs / "diabetes" / "runs.sqlite")
    seen = [s for s in steps if s.history]
    assert seen, "with 3 plans and 2 workers, the third plan of a step is proposed after the first two ran"
    for step in seen:
        earlier = {s.plan: s.score for s in steps if s.code == step.code and s.block_key == step.block_key
                   and s.attempt_id < step.attempt_id}
        assert {h.plan for h in step.history} <= set(earlier)
        assert all(h.score == pytest.approx(earlier[h.plan]) for h in step.history if h.score is not None)


def test_reading_the_same_stores_twice_adds_no_duplicate_steps(recorded_runs):
    once = build_dataset([recorded_runs])
    twice = build_dataset([recorded_runs, recorded_runs / "diabetes" / "runs.sqlite"])
    assert sum(map(len, once.values())) == sum(map(len, twice.values()))


def test_the_split_is_by_task_so_evaluation_states_come_from_tasks_never_trained_on(recorded_runs):
    splits = build_dataset([recorded_runs], eval_tasks=["iris"])
    assert {s.task for s in splits["train"]} == {"diabetes"}
    assert {s.task for s in splits["eval"]} == {"iris"}
    assert all(s.scale > 0 for split in splits.values() for s in split)  # each task's typical |gain|
    automatic = build_dataset([recorded_runs])
    assert not {s.task for s in automatic["train"]} & {s.task for s in automatic["eval"]}
    assert automatic["train"] and automatic["eval"]


def test_an_unknown_eval_task_or_a_missing_store_is_one_clear_error(recorded_runs, tmp_path):
    with pytest.raises(DatasetError, match="eval task 'titanic' has no recorded steps"):
        build_dataset([recorded_runs], eval_tasks=["titanic"])
    with pytest.raises(DatasetError, match="no run store there"):
        steps_from_store(tmp_path / "runs.sqlite")
    (tmp_path / "runs.sqlite").write_text("not a database")
    with pytest.raises(DatasetError, match="not a readable run store"):
        steps_from_store(tmp_path / "runs.sqlite")


def test_a_saved_dataset_reloads_as_jsonl_steps_and_as_a_hugging_face_dataset(step_splits, tmp_path):
    save_dataset(step_splits, tmp_path / "ds")
    for split in ("train", "eval"):
        assert [s.step_id for s in load_steps(tmp_path / "ds", split)] == [s.step_id for s in step_splits[split]]
    hf = load_from_disk(str(tmp_path / "ds" / "hf"))
    assert hf["train"].num_rows == len(step_splits["train"])
    assert set(hf["train"].column_names) >= {"step_id", "task", "gain", "seconds", "step"}
