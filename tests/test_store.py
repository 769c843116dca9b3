"""The run store: every executor run leaves an attempt row (lineage, code, outcome, timing, cache flag); the schema
version is recorded and checked; runs and LLM calls round-trip."""

from __future__ import annotations

import hashlib
import sqlite3
import time

import pytest

from core.executor import ExecutorOptions, RunRequest
from core.local_executor import LocalExecutor
from core.store import SCHEMA_VERSION, RunStore, StoreError

DRAFT = 'print("Final Validation Performance: 0.75")\n'
FAILING = 'rows = 0\nprint("mean:", 10 / rows)\n'


@pytest.fixture
def store(tmp_path):
    store = RunStore(tmp_path / "out" / "runs.sqlite")
    yield store
    store.close()


@pytest.fixture
def executor(tmp_path, store):
    return LocalExecutor(ExecutorOptions(workers=2), out_dir=tmp_path / "out", store=store, run_id="run-1")


@pytest.fixture
def inputs(make_competition):
    return make_competition("inputs", description=False, answers=False)


def test_every_run_records_an_attempt_with_lineage_code_outcome_and_timing(inputs, executor, store):
    before = time.time()
    draft = executor.run(RunRequest(code=DRAFT, input_dir=inputs, timeout=30, node="draft",
                                    plan="predict the majority class", check_submission=False))
    debug = executor.run(RunRequest(code=FAILING, input_dir=inputs, timeout=30, node="debug",
                                    parent_id=draft.attempt_id, plan="guard the division", check_submission=False))

    first, second = store.attempts(run_id="run-1")
    assert first["attempt_id"] == draft.attempt_id and second["attempt_id"] == debug.attempt_id
    assert {k: first[k] for k in ("run_id", "node", "parent_id", "plan", "code", "status", "reported_score",
                                  "error_tail", "cached", "fidelity")} == {
        "run_id": "run-1", "node": "draft", "parent_id": None, "plan": "predict the majority class", "code": DRAFT,
        "status": "ok", "reported_score": 0.75, "error_tail": None, "cached": 0, "fidelity": "search"}
    assert first["code_hash"] == hashlib.sha256(DRAFT.encode()).hexdigest()
    assert first["score"] is None  # the framework's scorer fills it from the validation predictions later
    assert first["workdir"] == str(draft.workdir)
    assert {k: second[k] for k in ("node", "parent_id", "plan", "status", "reported_score")} == {
        "node": "debug", "parent_id": draft.attempt_id, "plan": "guard the division", "status": "error",
        "reported_score": None}
    assert second["error_tail"].rstrip().endswith("ZeroDivisionError: division by zero")
    for row in (first, second):
        assert 0 < row["seconds"] < 30
        assert before <= row["started_at"] <= row["finished_at"] <= time.time()


def test_a_cached_rerun_is_recorded_as_its_own_attempt_flagged_cached(inputs, executor, store):
    request = RunRequest(code=DRAFT, input_dir=inputs, timeout=30, node="draft", check_submission=False)
    executor.run(request)
    executor.run(request)

    assert [(a["cached"], a["status"], a["reported_score"]) for a in store.attempts()] == [(0, "ok", 0.75),
                                                                                        (1, "ok", 0.75)]
    assert store.attempts()[0]["cache_key"] == store.attempts()[1]["cache_key"]


def test_attempts_can_be_filtered_by_node_and_scored_afterwards(inputs, executor, store):
    draft = executor.run(RunRequest(code=DRAFT, input_dir=inputs, timeout=30, node="draft", check_submission=False))
    executor.run(RunRequest(code=FAILING, input_dir=inputs, timeout=30, node="debug", check_submission=False))

    store.update_attempt(draft.attempt_id, score=0.8125, info={"rows": 120})

    [row] = store.attempts(node="draft")
    assert (row["score"], row["info"]) == (0.8125, {"rows": 120})
    assert store.attempt(draft.attempt_id) == row


def test_unknown_attempt_fields_are_refused(store):
    with pytest.raises(StoreError, match=r"unknown attempt fields \['accuracy'\]"):
        store.add_attempt(run_id="run-1", node="draft", code="", code_hash="", status="ok", accuracy=0.9)


def test_the_schema_version_is_recorded_in_the_file(tmp_path, store):
    assert store.schema_version() == SCHEMA_VERSION
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (str(SCHEMA_VERSION),)


def test_opening_a_store_of_another_schema_version_fails_naming_both_versions(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))

    with pytest.raises(StoreError) as raised:
        RunStore(path)

    assert str(raised.value) == (f"{path}: run store schema version {SCHEMA_VERSION + 1}, this mlestar reads "
                                 f"{SCHEMA_VERSION}; use a new output folder")


def test_a_reopened_store_keeps_what_was_written(tmp_path):
    path = tmp_path / "runs.sqlite"
    store = RunStore(path)
    attempt_id = store.add_attempt(run_id="run-1", node="draft", code="print(1)", code_hash="h", status="ok")
    store.close()

    reopened = RunStore(path)
    assert reopened.attempt(attempt_id)["code"] == "print(1)"
    reopened.close()


def test_runs_round_trip_from_start_to_finish(store):
    store.start_run("run-1", "iris", task_type="classification", metric="accuracy", maximize=True,
                    task_json='{"name": "iris"}')
    store.finish_run("run-1", "done", {"best_score": 0.97})

    [run] = store.runs()
    assert {k: run[k] for k in ("run_id", "task_name", "task_type", "metric", "maximize", "task_json", "status",
                                "result_json")} == {
        "run_id": "run-1", "task_name": "iris", "task_type": "classification", "metric": "accuracy", "maximize": 1,
        "task_json": '{"name": "iris"}', "status": "done", "result_json": '{"best_score": 0.97}'}
    assert run["started_at"] <= run["finished_at"]


def test_llm_calls_round_trip(store):
    call = {"run_id": "run-1", "node": "draft", "role": "coder", "model": "qwen2.5-coder-7b",
            "prompt": "Write a script that trains a random forest.", "reply": "import pandas as pd\n...", "ok": 1,
            "error": None, "tokens_in": 412, "tokens_out": 968, "seconds": 3.5, "started_at": 1_700_000_000.0}
    failed = {**call, "reply": None, "ok": 0, "error": "TimeoutError: no reply in 120 s", "tokens_out": None}

    first = store.add_llm_call(**call)
    second = store.add_llm_call(**failed)
    store.add_llm_call(**{**call, "run_id": "run-2"})

    assert store.llm_calls("run-1") == [{"call_id": first, **call}, {"call_id": second, **failed}]
    assert len(store.llm_calls()) == 3
