"""The final run learns from every labelled row; an ensemble's members are refitted for their test predictions, but
the ensemble combines the validation predictions of models that never saw those rows, and final_solution.py
reproduces that submission from ./input/ alone."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from core.dataprep import prepare_data
from core.executor import ExecutorOptions, RunRequest
from core.local_executor import LocalExecutor
from core.policy import CandidateInfo, PlanRecord
from core.scoring import score_predictions
from core.task import load_task
from graphs.ensembling import candidate_names, ensemble_input, standalone_ensemble
from plugins.heuristic import make_heuristic_policy
from retrieval.catalogue import CatalogueBackend
from space.ops import parse_plan


@pytest.mark.parametrize("folds", [3, 1])
def test_an_ensembles_final_solution_reproduces_its_refitted_submission_from_the_input_folder_alone(
        folds, tmp_path, make_competition, registry):
    competition = make_competition(dataset="diabetes")
    (tmp_path / "task.yaml").write_text(yaml.safe_dump({"data": {"dir": str(competition)}, "metric": "rmse",
                                                        "validation": {"folds": folds},
                                                        "output": str(tmp_path / "out")}))
    task = load_task(tmp_path / "task.yaml", metrics=registry.metrics)
    data = prepare_data(task, maximize=False, proba=False)
    ctx, metric = data.context, registry.metrics["rmse"]
    everything = pd.read_csv(data.full_dir / "train.csv")
    assert len(everything) == ctx.n_train + ctx.n_valid  # the final run's train.csv holds the validation rows too
    executor = LocalExecutor(ExecutorOptions(workers=2), out_dir=tmp_path / "runs")

    def run(code: str, input_dir: Path) -> Path:
        result = executor.run(RunRequest(code=code, input_dir=input_dir, timeout=300, id_column=ctx.id_column))
        assert result.ok, result.error_tail
        assert result.folds == (folds if input_dir == data.search_dir else 1)
        return result.workdir

    policy = make_heuristic_policy({}, task=task)
    cards = {card.name: card for card in CatalogueBackend().search(ctx.card_query(), 50)}
    members, refits = [], []
    for name in ("linear", "random_forest"):
        code = policy.write_initial(ctx, cards[name])
        searched = run(code, data.search_dir)
        refit = run(code, data.full_dir)
        score, problem = score_predictions(searched / "val_predictions.csv", data.truth, ctx, metric)
        assert problem == ""
        in_sample, _ = score_predictions(refit / "val_predictions.csv", data.truth, ctx, metric)
        if name == "random_forest":  # the refit has seen the validation rows: its score on them flatters it
            assert in_sample < 0.8 * score
        members.append({"code": code, "workdir": str(searched), "score": score})
        refits.append({"workdir": str(refit)})

    candidates = [CandidateInfo(name=n, score=m["score"], model=n) for n, m in zip(candidate_names(members), members)]
    history: list[PlanRecord] = []
    while parse_plan(plan := policy.plan_ensemble(ctx, candidates, history))[1]["method"] != "stacking":
        history.append(PlanRecord(plan=plan, score=None, status="ok"))
    stacking = policy.implement_ensemble(ctx, candidates, plan)
    folder = ensemble_input(data.full_dir, members, tmp_path / "ensemble_input", refits=refits)
    for name, member, refit in zip(candidate_names(members), members, refits):
        kept = folder / "candidates" / name
        assert (kept / "val_predictions.csv").read_bytes() == (Path(member["workdir"]) / "val_predictions.csv").read_bytes()
        assert (kept / "submission.csv").read_bytes() == (Path(refit["workdir"]) / "submission.csv").read_bytes()
    ours = pd.read_csv(run(stacking, folder) / "submission.csv")

    repro = tmp_path / "repro"
    shutil.copytree(data.full_dir, repro / "input")
    (repro / "final_solution.py").write_text(standalone_ensemble(members, stacking, ctx.id_column))
    done = subprocess.run([sys.executable, "final_solution.py"], cwd=repro, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    pd.testing.assert_frame_equal(ours, pd.read_csv(repro / "submission.csv"), check_exact=False, atol=1e-6)
