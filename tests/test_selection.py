"""Selection that does not fool itself: the search scores attempts on rows the final choice never reads (on small
data every search row, cross-validated; else one part of the validation rows); the final solution is chosen among a
few finalists on the held-out rows, and the search's optimism is recorded."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from graphs.runner import open_run
from graphs.selection import FINALISTS, choose_final, finalists

ROOT = Path(__file__).resolve().parents[1]


def penguins_run(tmp_path, selection=None, folds="auto"):
    folder = tmp_path / "penguins"
    folder.mkdir(parents=True)
    spec = yaml.safe_load((ROOT / "examples" / "penguins" / "task.yaml").read_text())
    for name in ("description.md", "train.csv", "test.csv"):
        (folder / name).write_bytes((ROOT / "examples" / "penguins" / name).read_bytes())
    spec["validation"] = {"folds": folds, **({"selection": selection} if selection is not None else {})}
    (folder / "task.yaml").write_text(yaml.safe_dump(spec))
    return open_run(folder / "task.yaml", tmp_path / "out")


def test_the_selection_rows_are_validation_rows_the_search_never_scores_on(tmp_path):
    rc = penguins_run(tmp_path, folds=1)
    valid = pd.read_csv(rc.data.search_dir / "valid.csv")  # what scripts predict: every validation row
    searched, held = pd.read_csv(rc.data.truth), pd.read_csv(rc.data.selection_truth)
    ids = rc.ctx.id_column
    assert set(searched[ids]).isdisjoint(held[ids])
    assert set(searched[ids]) | set(held[ids]) == set(valid[ids])
    assert abs(len(held) - len(valid) / 2) <= 1
    assert set(held[rc.ctx.target]) == set(valid[rc.ctx.target])  # stratified: every species in both halves

    off = penguins_run(tmp_path / "off", selection=0, folds=1)
    assert off.data.selection_truth is None and len(pd.read_csv(off.data.truth)) == len(valid)


def test_a_cross_validated_search_scores_every_search_row_and_leaves_every_validation_row_to_the_choice(tmp_path):
    rc = penguins_run(tmp_path)  # 275 rows: auto cross-validates
    train, covered = pd.read_csv(rc.data.search_dir / "train.csv"), pd.read_csv(rc.data.search_dir / "valid.csv")
    searched, held = pd.read_csv(rc.data.truth), pd.read_csv(rc.data.selection_truth)
    ids = rc.ctx.id_column
    assert sorted(searched[ids]) == sorted(train[ids]) and set(held[ids]).isdisjoint(train[ids])
    assert len(held) == rc.ctx.n_valid and set(searched[ids]) | set(held[ids]) == set(covered[ids])

    off = penguins_run(tmp_path / "off", selection=0)  # no final choice: the validation rows are scored too
    assert off.data.selection_truth is None and len(pd.read_csv(off.data.truth)) == len(covered)


def attempt(i, score, holdout, label=None):
    return {"id": i, "code": f"# {i}", "score": score, "holdout": holdout, "label": label or f"a{i}"}


def test_the_finalist_best_on_all_the_rows_it_was_not_fitted_on_is_chosen_and_the_optimism_recorded(tmp_path):
    rc = penguins_run(tmp_path)  # accuracy, higher is better; the search cross-validates 4x as many rows as are held
    lucky, steady = attempt(1, 0.99, 0.90, "lucky"), attempt(2, 0.97, 0.96, "steady")
    ensemble = attempt(3, 0.98, 0.95, "ensemble r2")
    state = {"best": lucky, "tracks": {"main": lucky, "svm": steady}, "finalists": [ensemble]}
    chosen, record = choose_final(rc, state)
    n, held = record["rows"]["search"], record["rows"]["selection"]
    assert (n, held) == (len(pd.read_csv(rc.data.truth)), len(pd.read_csv(rc.data.selection_truth)))
    # the ensemble: second on both sets of rows, first on them together
    assert chosen is ensemble and record["method"] == "search and selection rows"
    assert [c["pooled"] for c in record["candidates"]] == pytest.approx(
        [(s * n + h * held) / (n + held) for s, h in ((0.99, 0.90), (0.98, 0.95), (0.97, 0.96))])
    assert record["search_best"] == "lucky" and record["chosen"] == "ensemble r2"
    assert record["optimism"] == pytest.approx(0.98 - 0.95)
    assert [c["label"] for c in record["candidates"]] == ["lucky", "ensemble r2", "steady"]

    # a finalist far behind on the search's rows is not chosen for a small lead on the few held-out ones
    side = attempt(4, 0.93, 0.965, "side track")
    chosen, _ = choose_final(rc, {"best": steady, "tracks": {"main": steady, "forest": side}})
    assert chosen is steady

    many = {"best": lucky, "finalists": [attempt(10 + i, 0.5 + i / 100, 0.5) for i in range(10)]}
    assert len(finalists(rc, many)) == FINALISTS  # a short list: many candidates would flatter the choice again


def test_without_selection_rows_the_search_best_is_kept_and_the_report_says_why(tmp_path):
    rc = penguins_run(tmp_path, selection=0)
    lucky, steady = attempt(1, 0.99, None, "lucky"), attempt(2, 0.97, None, "steady")
    chosen, record = choose_final(rc, {"best": lucky, "tracks": {"svm": steady}})
    assert chosen is lucky and record["method"] == "search score" and "validation.selection" in record["why"]


def test_a_script_two_tracks_reached_is_one_finalist_and_leaves_its_second_place_to_another(tmp_path):
    rc = penguins_run(tmp_path)
    head = attempt(1, 0.97, 0.95, "refine t1 k2")
    again = {**head, "id": 7, "label": "refine t5 k2"}  # a side track that began as main's draft, from the cache
    others = [attempt(10 + i, 0.9 - i / 100, 0.9) for i in range(4)]
    short = finalists(rc, {"best": head, "tracks": {"main": head, "linear": again}, "finalists": others})
    assert [a["label"] for a in short] == ["refine t1 k2", "a10", "a11", "a12", "a13"]
