"""The scripts the LLM prompts show as a starting point keep the script contract for real: run on prepared input
folders (labels, probabilities of the positive class, one probability per class, values), the framework scores
their validation predictions, and the ensemble skeleton combines two real candidates' stored predictions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from core.dataprep import prepare_data
from core.loading import load_with_plugins
from core.policy import BlockInfo, CandidateInfo
from core.scoring import score_predictions
from graphs.ensembling import ensemble_input
from plugins.llm import prompting, replies, skeletons


def prepared(make_competition, tmp_path: Path, dataset: str, metric: str):
    folder = make_competition(f"{dataset}-{metric}", dataset)
    if metric == "logloss":  # one probability column per class, as in MLE-bench's multi-class samples
        sample = pd.read_csv(folder / "sample_submission.csv")[["id"]]
        for label in ("setosa", "versicolor", "virginica"):
            sample[label] = 1 / 3
        sample.to_csv(folder / "sample_submission.csv", index=False)
    target = {"iris": "species", "diabetes": "progression"}[dataset]
    (folder / "task.yaml").write_text(yaml.safe_dump({"name": f"{dataset}-{metric}", "metric": metric,
                                                      "data": {"dir": ".", "target": target}}))
    task, registry = load_with_plugins(folder / "task.yaml", tmp_path / f"out-{dataset}-{metric}")
    m = registry.metrics[task.metric]
    return prepare_data(task, maximize=m.maximize, proba=m.proba), m


def run(code: str, input_dir: Path, workdir: Path) -> str:
    workdir.mkdir(parents=True)
    (workdir / "input").symlink_to(input_dir)
    (workdir / "solution.py").write_text(code)
    done = subprocess.run([sys.executable, "solution.py"], cwd=workdir, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("dataset, metric", [("iris", "accuracy"), ("iris", "logloss"), ("diabetes", "rmse"),
                                             ("diabetes", "r2")])
def test_the_initial_skeleton_runs_and_the_framework_scores_it(make_competition, tmp_path, dataset, metric):
    data, m = prepared(make_competition, tmp_path, dataset, metric)
    assert data.context.output_kind() == {"accuracy": "label", "logloss": "wide"}.get(metric, "value")
    code = skeletons.initial_skeleton(data.context)
    assert replies.parse_script(f"```python\n{code}```") == code  # what a model copying it back would give
    stdout = run(code, data.search_dir, tmp_path / "run")
    score, problem = score_predictions(tmp_path / "run" / "val_predictions.csv", data.truth, data.context, m)
    assert problem == "" and score is not None
    # the script prints its score on every validation row; the framework scores the search's share of them
    valid = pd.read_csv(data.search_dir / "valid.csv")
    valid[[data.context.id_column, data.context.target]].to_csv(tmp_path / "all_truth.csv", index=False)
    on_all, _ = score_predictions(tmp_path / "run" / "val_predictions.csv", tmp_path / "all_truth.csv",
                                  data.context, m)
    printed = float(stdout.strip().splitlines()[-1].split(":")[-1])
    assert printed == pytest.approx(on_all, rel=1e-4, abs=1e-4)  # the cross-check agrees with the framework


def test_the_positive_class_skeleton_predicts_its_probability(make_competition, tmp_path):
    folder = make_competition("binary", "iris")
    for name in ("train.csv", "test.csv", "sample_submission.csv", "answers.csv"):
        path = folder / name
        text = path.read_text().replace("versicolor", "virginica")  # two classes left
        path.write_text(text)
    (folder / "task.yaml").write_text(yaml.safe_dump({"name": "binary", "data": {"dir": "."}, "metric": "roc_auc"}))
    task, registry = load_with_plugins(folder / "task.yaml", tmp_path / "out")
    m = registry.metrics["roc_auc"]
    data = prepare_data(task, maximize=m.maximize, proba=m.proba)
    assert data.context.output_kind() == "positive"
    run(skeletons.initial_skeleton(data.context), data.search_dir, tmp_path / "run")
    score, problem = score_predictions(tmp_path / "run" / "val_predictions.csv", data.truth, data.context, m)
    assert problem == "" and 0.5 < score <= 1.0


def test_the_ensemble_skeleton_combines_two_candidates_predictions(penguins, tmp_path):
    ctx, data = penguins.ctx, penguins.data
    code = skeletons.initial_skeleton(ctx)
    members = []
    for i, estimator in enumerate(["LogisticRegression(max_iter=1000)", "LogisticRegression(C=0.01)"]):
        run(code.replace("LogisticRegression(max_iter=1000)", estimator), data.search_dir, tmp_path / f"m{i}")
        members.append({"workdir": str(tmp_path / f"m{i}")})
    input_dir = ensemble_input(data.search_dir, members, tmp_path / "ensemble-input")
    candidates = [CandidateInfo(name="c0", score=0.9), CandidateInfo(name="c1", score=0.8)]
    run(skeletons.ensemble_skeleton(ctx, candidates), input_dir, tmp_path / "ensemble")
    metric = penguins.registry.metrics[ctx.metric]
    score, problem = score_predictions(tmp_path / "ensemble" / "val_predictions.csv", data.truth, ctx, metric)
    assert problem == "" and score > 0.5


def test_heuristic_block_specs_are_hidden_from_the_model_and_never_kept_on_a_rewritten_block():
    code = '# [block: model] {"members": [{"estimator": "x"}]}\nmodel = make_model()\n\n' \
           '# [block: train] {"folds": 5}\nmodel.fit(X, y)\n'
    assert prompting.without_specs(code) == ("# [block: model]\nmodel = make_model()\n\n"
                                             "# [block: train]\nmodel.fit(X, y)\n")
    block = BlockInfo(key="model#0", kind="model", source='# [block: model] {"members": [{"estimator": "x"}]}\n'
                                                            "model = make_model()")
    new = replies.parse_block("```python\nmodel = make_model(depth=3)\n```", code, block)
    assert new == "# [block: model]\nmodel = make_model(depth=3)"
