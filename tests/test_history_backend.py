"""The `history` search backend: catalogue cards reordered by how their drafts ranked in earlier runs, read from run
stores written through the real RunStore API (earlier runs as test data) and from one real pipeline run."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from loguru import logger

from core.cards import CardQuery
from core.errors import TaskError
from core.store import RunStore
from retrieval.catalogue import CatalogueBackend
from retrieval.history import HistoryBackend, normalised_ranks

ROOT = Path(__file__).resolve().parents[1]
CLASSIFICATION = CardQuery(task_type="classification", metric="accuracy", n_rows=300, n_features=6)
REGRESSION = CardQuery(task_type="regression", metric="rmse", n_rows=3000, n_features=9)


def write_runs(path: Path, *runs: tuple[str, bool, dict[str, float | None]]) -> Path:
    """A run store holding one finished run per (task type, maximize, {card: draft score or None for a failure})."""
    store = RunStore(path)
    for i, (task_type, maximize, drafts) in enumerate(runs):
        run_id = f"{path.parent.name}-{i}"
        store.start_run(run_id, f"task-{i}", task_type=task_type, metric="accuracy" if maximize else "rmse",
                        maximize=maximize)
        for card, score in drafts.items():
            store.add_attempt(run_id=run_id, node="draft", plan=f"initial solution: {card}", code=f"# {card}",
                              code_hash=card, fidelity="search", status="ok" if score is not None else "error",
                              score=score)
        store.finish_run(run_id, "finished")
    store.close()
    return path


def search(tmp_path: Path, query: CardQuery = CLASSIFICATION, limit: int = 20, **options):
    return HistoryBackend(options, cache_dir=tmp_path / "out" / "now" / "cache" / "search").search(query, limit)


@pytest.fixture
def logged():
    """Every loguru record emitted while the test runs."""
    records = []
    sink = logger.add(lambda message: records.append(message.record), level="DEBUG")
    yield records
    logger.remove(sink)


# --- ranking ---------------------------------------------------------------------------------------------------

def test_cards_are_ordered_by_their_mean_normalised_rank_over_earlier_runs(tmp_path, logged):
    store = write_runs(tmp_path / "a" / "runs.sqlite",
                       ("classification", True, {"lightgbm": 0.90, "random_forest": 0.95, "linear": 0.80}),
                       ("classification", True, {"random_forest": 0.88, "lightgbm": 0.86}))
    other = write_runs(tmp_path / "b" / "runs.sqlite",
                       ("classification", True, {"linear": 0.97, "lightgbm": 0.93, "knn": 0.91}))

    cards = search(tmp_path, stores=[str(store), str(other)])

    # random_forest 1.0 and 1.0; linear 0.0 and 1.0; lightgbm 0.5, 0.0 and 0.5; knn 0.0.
    assert [(c.name, c.score_hint) for c in cards[:4]] == [("random_forest", 1.0), ("linear", 0.5),
                                                          ("lightgbm", pytest.approx(1 / 3)), ("knn", 0.0)]
    never_drafted = [c for c in CatalogueBackend().search(CLASSIFICATION, 20) if c.name not in
                     {"random_forest", "linear", "lightgbm", "knn"}]
    assert cards[4:] == never_drafted  # in catalogue order, untouched
    assert {c.source for c in cards[:4]} == {"history"}
    assert "best in 2 of 2 earlier classification runs" in cards[0].why
    assert "best in 0 of 3 earlier classification runs" in cards[2].why
    [line] = [r["message"] for r in logged if r["level"].name == "INFO"]
    assert line.startswith("history: 3 earlier classification run(s) in 2 run store(s) rank random_forest 1.00 (2)")


def test_lower_is_better_runs_rank_the_lowest_score_first_and_other_task_types_are_ignored(tmp_path):
    store = write_runs(tmp_path / "a" / "runs.sqlite",
                       ("regression", False, {"lightgbm": 0.31, "random_forest": 0.27, "linear": 0.45}),
                       ("classification", True, {"linear": 0.99, "random_forest": 0.50}))

    cards = search(tmp_path, REGRESSION, limit=3, stores=[str(store)])

    assert [(c.name, c.score_hint) for c in cards] == [("random_forest", 1.0), ("lightgbm", 0.5), ("linear", 0.0)]
    assert "best in 1 of 1 earlier regression runs" in cards[0].why


def test_failed_drafts_rank_last_and_a_debugged_draft_counts_with_its_repair(tmp_path):
    store = RunStore(tmp_path / "a" / "runs.sqlite")
    store.start_run("r", "t", task_type="classification", metric="accuracy", maximize=True)
    broken = store.add_attempt(run_id="r", node="draft", plan="initial solution: lightgbm", code="x", code_hash="x",
                               status="error")
    store.add_attempt(run_id="r", node="draft:debug", parent_id=broken, plan="initial solution: lightgbm",
                      code="y", code_hash="y", status="ok", score=0.7)
    store.add_attempt(run_id="r", node="draft", plan="initial solution: random_forest", code="z", code_hash="z",
                      status="ok", score=0.8)
    store.add_attempt(run_id="r", node="draft", plan="initial solution: svm", code="s", code_hash="s",
                      status="timeout")
    store.add_attempt(run_id="r", node="refine", plan="initial solution: knn", code="k", code_hash="k",
                      status="ok", score=0.99)  # not a draft
    store.close()

    cards = search(tmp_path, limit=3, stores=[str(tmp_path / "a" / "runs.sqlite")])

    assert [(c.name, c.score_hint) for c in cards] == [("random_forest", 1.0), ("lightgbm", 0.5), ("svm", 0.0)]


def test_ties_share_their_mean_rank_and_the_catalogue_order_breaks_them():
    assert normalised_ranks({"a": 0.9, "b": 0.9, "c": 0.5, "d": None, "e": None}, True) == {
        "a": 0.875, "b": 0.875, "c": 0.5, "d": 0.125, "e": 0.125}
    assert normalised_ranks({"a": 0.9}, True) == {}  # one card says nothing about the others
    assert normalised_ranks({"a": None, "b": None}, True) == {}


def test_equal_means_keep_the_catalogue_order(tmp_path):
    store = write_runs(tmp_path / "a" / "runs.sqlite", ("classification", True, {"lightgbm": 0.9, "linear": 0.9}))

    cards = search(tmp_path, limit=2, stores=[str(store)])

    # On 300 rows the catalogue puts the linear model before LightGBM (drafted first).
    assert [c.name for c in CatalogueBackend().search(CLASSIFICATION, 2)] == ["linear", "lightgbm"]
    assert [(c.name, c.score_hint) for c in cards] == [("linear", 0.5), ("lightgbm", 0.5)]


# --- no history, and where the stores come from ----------------------------------------------------------------

def test_without_history_the_answer_is_exactly_the_catalogues_with_one_info_line(tmp_path, logged, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write_runs(tmp_path / "out" / "before" / "runs.sqlite",
               ("regression", False, {"lightgbm": 0.3, "linear": 0.4}),  # another task type
               ("classification", True, {"lightgbm": 0.9}))  # a single draft ranks nothing

    cards = search(tmp_path, limit=4)

    assert cards == CatalogueBackend().search(CLASSIFICATION, 4)
    assert [r["message"] for r in logged] == [
        "history: no earlier classification run with ranked drafts in 1 run store(s); using the catalogue's ranking"]


def test_default_stores_are_the_sibling_output_folders_and_the_home_history(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    siblings = [write_runs(tmp_path / "out" / name / "runs.sqlite") for name in ("before", "now")]
    kept = write_runs(tmp_path / "home" / ".cache" / "mlestar" / "history" / "lab.sqlite")
    (tmp_path / "out" / "notes").mkdir()

    paths = HistoryBackend(cache_dir=tmp_path / "out" / "now" / "cache" / "search").store_paths()

    assert paths == [p.resolve() for p in (*siblings, kept)]


def test_unreadable_stores_are_skipped_with_a_warning_and_the_others_still_count(tmp_path, logged):
    write_runs(tmp_path / "good" / "runs.sqlite", ("classification", True, {"linear": 0.9, "svm": 0.8}))
    garbage = tmp_path / "garbage" / "runs.sqlite"
    garbage.parent.mkdir()
    garbage.write_text("not a database")
    future = write_runs(tmp_path / "future" / "runs.sqlite")
    with sqlite3.connect(future) as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")

    cards = search(tmp_path, limit=2, stores=[str(tmp_path / "*" / "runs.sqlite"), str(tmp_path / "missing.sqlite")])

    assert [c.name for c in cards] == ["linear", "svm"]
    warned = sorted(r["message"] for r in logged if r["level"].name == "WARNING")
    assert len(warned) == 3
    assert "run store schema version 99" in warned[0] and "future" in warned[0]
    assert "garbage" in warned[1] and "not a database" in warned[1]
    assert warned[2].endswith("missing.sqlite not found; skipped")


@pytest.mark.parametrize(("options", "message"), [
    ({"store": []}, "unknown option 'store'"),
    ({"stores": "out/*/runs.sqlite"}, "option 'stores' must be a list"),
])
def test_bad_options_are_one_line_task_errors(options, message):
    with pytest.raises(TaskError, match=message):
        HistoryBackend(options)


# --- a real run ------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_real_pipeline_runs_store_ranks_its_better_draft_first(tmp_path, monkeypatch):
    task_dir = tmp_path / "penguins"
    shutil.copytree(ROOT / "examples" / "penguins", task_dir, ignore=shutil.ignore_patterns("private"))
    task = yaml.safe_load((task_dir / "task.yaml").read_text())
    task["budget"] = {"total_seconds": 200, "run_timeout": 120, "models": 2, "plans": 1, "outer_steps": 0,
                      "ensemble_rounds": 0, "debug_retries": 1}
    task["strategy"] = {"anytime": False}  # the first pass only: this test is not about the anytime search
    task["output"] = str(tmp_path / "out" / "penguins")
    (task_dir / "task.yaml").write_text(yaml.safe_dump(task, sort_keys=False))

    done = subprocess.run([sys.executable, "-m", "core.run", str(task_dir / "task.yaml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=400, check=False)
    assert done.returncode == 0, done.stderr[-3000:]

    store = RunStore(tmp_path / "out" / "penguins" / "runs.sqlite")
    drafts = {a["plan"].removeprefix("initial solution: "): a["score"] for a in store.attempts(node="draft")}
    store.close()
    assert len(drafts) == 2 and None not in drafts.values() and len(set(drafts.values())) == 2, drafts
    better, worse = sorted(drafts, key=drafts.get, reverse=True)  # accuracy: higher is better

    # The next run's history backend finds the store in its sibling output folder by default.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # and no history kept in the real home
    next_run = HistoryBackend(cache_dir=tmp_path / "out" / "next" / "cache" / "search")
    cards = next_run.search(CardQuery(task_type="classification", metric="accuracy"), limit=3)

    assert [(c.name, c.score_hint) for c in cards[:2]] == [(better, 1.0), (worse, 0.0)]
    assert "best in 1 of 1 earlier classification runs" in cards[0].why
    assert cards[2].source == "catalogue"
