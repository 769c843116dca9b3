"""The heuristic policy: the scripts it writes run for real on contract folders built from scikit-learn's bundled data
(with a categorical column, gaps, free text and dates added) and score plausibly; plans splice in and change what
they say; merges blend; ensembles combine real candidate outputs; the debugger repairs real failures."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pluggy
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.linear_model import LogisticRegression

from ablation import AblationRow, AblationSummary, splice, split_blocks
from core import hookspecs
from core.cards import Estimator, ModelCard
from core.checks import leakage_findings
from core.errors import PluginError
from core.policy import BlockInfo, CandidateInfo, ColumnInfo, PlanRecord, TaskContext
from core.scoring import score_predictions
from core.submission import frame_problems
from core.policy import AblationView
from plugins.heuristic import make_heuristic_policy
from space.ops import parse_plan
from space.specs import KINDS
from space.render import block_spec, marked_blocks
from plugins.metrics import BUILTIN
from retrieval.catalogue import CatalogueBackend

SCORE_LINE = re.compile(r"^Final Validation Performance: (\S+)$", re.MULTILINE)
METRICS = {m.name: m for m in BUILTIN}
WORKERS = max(2, min(4, os.cpu_count() or 2))
WORDS = ["fever", "cough", "fatigue", "headache", "nausea", "dizziness", "rash", "pain", "swelling", "chills", "stiffness", "thirst"]

NO_ABLATION = AblationView()  # a plan_refinement call before any ablation ran


# --- contract folders --------------------------------------------------------------------------------------------

@dataclass
class Contract:
    """A prepared working input: ./input/{train,valid,test,sample_submission}.csv, the truth kept outside."""

    ctx: TaskContext
    root: Path
    truth: Path

    @property
    def input(self) -> Path:
        return self.root / "input"

    @property
    def metric(self):
        return METRICS[self.ctx.metric]


def _frame(dataset: str) -> tuple[pd.DataFrame, str]:
    rng = np.random.default_rng(7)
    if dataset == "cancer":
        frame = load_breast_cancer(as_frame=True).frame.rename(columns=lambda c: c.replace(" ", "_"))
        target = "malignant"
        frame = frame.rename(columns={"target": target})
    elif dataset == "wine":
        data = load_wine(as_frame=True)
        frame = data.frame.rename(columns=lambda c: c.replace("/", "_"))
        target = "cultivar"
        frame[target] = np.array(["barolo", "grignolino", "barbera"])[data.target]
        frame = frame.drop(columns="target")
    else:
        frame = load_diabetes(as_frame=True).frame
        target = "progression"
        frame = frame.rename(columns={"target": target})
        # Free text whose words carry a little signal, and visit dates.
        severity = (frame["bmi"] > frame["bmi"].median()).to_numpy()
        frame["notes"] = [" ".join(rng.choice(WORDS[:6] if s else WORDS[6:], size=8)) for s in severity]
        frame["visit"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, len(frame)), unit="D")
    numeric = [c for c in frame.columns if c not in (target, "notes", "visit")]
    for column in numeric[:3]:
        frame.loc[rng.random(len(frame)) < 0.12, column] = np.nan
    frame["colour"] = rng.choice(["red", "green", "blue", None], size=len(frame))
    frame.insert(0, "id", np.arange(5000, 5000 + len(frame)))
    return frame.sample(frac=1.0, random_state=3).reset_index(drop=True), target


def _dtype(column: str, values: pd.Series) -> str:
    known = {"notes": "text", "visit": "datetime", "colour": "categorical"}
    return known.get(column) or ("categorical" if values.dtype == object else "numeric")


def build_contract(root: Path, dataset: str, metric: str, *, wide: bool = False) -> Contract:
    frame, target = _frame(dataset)
    return frame_contract(root, frame, target, metric, name=dataset, wide=wide, regression=dataset == "diabetes")


def frame_contract(root: Path, frame: pd.DataFrame, target: str, metric: str, *, name: str, wide: bool = False,
                   regression: bool = False) -> Contract:
    """A task folder from ``frame`` (an ``id`` column first): 60% train, 20% valid, 20% test."""
    n = len(frame)
    train, valid, test = frame.iloc[: int(0.6 * n)], frame.iloc[int(0.6 * n): int(0.8 * n)], frame.iloc[int(0.8 * n):]
    (root / "input").mkdir(parents=True)
    train.to_csv(root / "input" / "train.csv", index=False)
    valid.to_csv(root / "input" / "valid.csv", index=False)
    test.drop(columns=target).to_csv(root / "input" / "test.csv", index=False)
    classes = [str(c) for c in sorted(frame[target].unique())] if not regression else []
    prediction_columns = classes if wide else [target]
    sample = test[["id"]].assign(**{c: 0 for c in prediction_columns})
    sample.to_csv(root / "input" / "sample_submission.csv", index=False)
    valid[["id", target]].to_csv(root / "valid_truth.csv", index=False)
    known = METRICS[metric]
    ctx = TaskContext(
        name=f"{name}-{metric}", goal=f"Predict {target}.", task_type=known.task_type, metric=metric,
        maximize=known.maximize, proba=known.proba, target=target, id_column="id",
        prediction_columns=prediction_columns, classes=classes,
        columns=[ColumnInfo(name=c, dtype=_dtype(c, train[c]), missing=float(train[c].isna().mean()),
                            unique=int(train[c].nunique())) for c in frame.columns if c not in ("id", target)],
        n_train=len(train), n_valid=len(valid), n_test=len(test),
        files=sorted(p.name for p in (root / "input").iterdir()), seed=0)
    return Contract(ctx, root, root / "valid_truth.csv")


@pytest.fixture(scope="module")
def contracts(tmp_path_factory) -> dict[str, Contract]:
    base = tmp_path_factory.mktemp("contracts")
    return {
        "binary": build_contract(base / "binary", "cancer", "roc_auc"),
        "wide": build_contract(base / "wide", "wine", "logloss", wide=True),
        "labels": build_contract(base / "labels", "wine", "accuracy"),
        "regression": build_contract(base / "regression", "diabetes", "rmse"),
    }


@pytest.fixture(scope="module")
def policy():
    return make_heuristic_policy({})


def cards_for(ctx: TaskContext) -> dict[str, ModelCard]:
    return {card.name: card for card in CatalogueBackend().search(ctx.card_query(), 50)}


# --- running scripts ---------------------------------------------------------------------------------------------

@dataclass
class Run:
    code: str
    returncode: int
    stdout: str
    stderr: str
    workdir: Path
    printed: float | None = None  # what the script printed
    score: float | None = None  # the framework's score of val_predictions.csv


_RUNS: dict[str, Run] = {}


def run_script(contract: Contract, code: str, input_dir: Path | None = None) -> Run:
    """Run ``code`` in a fresh folder whose ./input is the contract's (or ``input_dir``), as the executor would."""
    key = hashlib.sha256((str(input_dir or contract.input) + code).encode()).hexdigest()[:16]
    if key in _RUNS:
        return _RUNS[key]
    workdir = contract.root / "runs" / key
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    (workdir / "input").symlink_to(input_dir or contract.input)
    (workdir / "solution.py").write_text(code)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "solution.py"], cwd=workdir, capture_output=True, text=True, timeout=600,
                          env=env, check=False)
    found = SCORE_LINE.findall(done.stdout)
    result = Run(code, done.returncode, done.stdout, done.stderr, workdir, float(found[-1]) if found else None)
    if done.returncode == 0 and (workdir / "val_predictions.csv").is_file():
        result.score, _ = score_predictions(workdir / "val_predictions.csv", contract.truth, contract.ctx,
                                            contract.metric)
    _RUNS[key] = result
    return result


def run_many(jobs: list[tuple[Contract, str]]) -> list[Run]:
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(lambda job: run_script(*job), jobs))


def assert_contract_kept(contract: Contract, run: Run) -> None:
    """It ran, printed the score the framework also gets, and wrote both files in the sample's format."""
    assert run.returncode == 0, f"script failed:\n{run.stderr[-3000:]}"
    assert run.score is not None, "the framework could not score val_predictions.csv"
    assert run.printed == pytest.approx(run.score, rel=1e-5, abs=1e-6)
    sample = pd.read_csv(contract.input / "sample_submission.csv")
    assert frame_problems(pd.read_csv(run.workdir / "submission.csv"), sample, "id", "submission") == []
    val = pd.read_csv(run.workdir / "val_predictions.csv")
    assert list(val.columns) == list(sample.columns) and not val.isna().any().any()
    assert sorted(val["id"]) == sorted(pd.read_csv(contract.input / "valid.csv")["id"])


def plausible(contract: Contract, score: float) -> bool:
    metric = contract.ctx.metric
    if metric == "roc_auc":
        return score > 0.9
    if metric == "logloss":
        return score < 0.75  # a uniform guess over three classes scores 1.10
    if metric == "accuracy":
        return score > 0.7
    spread = pd.read_csv(contract.truth)[contract.ctx.target].std()
    return score < 0.9 * spread  # rmse well below predicting the mean


@pytest.fixture(scope="module")
def drafts(contracts, policy) -> dict[str, dict[str, Run]]:
    """Every catalogue card's initial script for the binary, wide and regression tasks, run once."""
    jobs, names = [], []
    for key in ("binary", "wide", "regression"):
        contract = contracts[key]
        for name, card in cards_for(contract.ctx).items():
            jobs.append((contract, policy.write_initial(contract.ctx, card)))
            names.append((key, name))
    out: dict[str, dict[str, Run]] = {}
    for (key, name), run in zip(names, run_many(jobs)):
        out.setdefault(key, {})[name] = run
    return out


def block(code: str, kind: str):
    return next(b for b in split_blocks(code) if b.kind == kind)


def info(code: str, kind: str) -> BlockInfo:
    b = block(code, kind)
    return BlockInfo(key=b.key, kind=b.kind, source=b.source)


def refined(policy, ctx: TaskContext, code: str, kind: str, plan: str) -> str:
    """The script with ``plan`` implemented in its block of ``kind`` and spliced back as the refine node does."""
    new_source = policy.implement_plan(ctx, code, info(code, kind), plan)
    assert new_source is not None, f"plan not implemented: {plan}"
    return splice(code, block(code, kind), new_source)


# --- drafting ----------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_every_catalogue_card_drafts_a_script_that_runs_and_scores_plausibly(contracts, drafts):
    assert {len(runs) for runs in drafts.values()} >= {11}  # every card that fits the task type
    for key, runs in drafts.items():
        contract = contracts[key]
        for name, run in runs.items():
            assert_contract_kept(contract, run)
            assert plausible(contract, run.score), f"{key}/{name}: implausible {contract.ctx.metric} {run.score}"


def test_initial_script_adapts_inputs_to_the_model(contracts, policy):
    ctx = contracts["regression"].ctx
    cards = cards_for(ctx)
    svm = {kind: spec for kind, spec, *_ in marked_blocks(policy.write_initial(ctx, cards["svm"]))}
    assert (svm["preprocess"].scaling, svm["preprocess"].impute, svm["preprocess"].encoding) == \
        ("standard", "median", "onehot")
    assert svm["model"].members[0].estimator == "sklearn.svm.SVR"
    assert svm["model"].members[0].target == "standard"  # SVR's epsilon is in target units
    lgbm = {kind: spec for kind, spec, *_ in marked_blocks(policy.write_initial(ctx, cards["lightgbm"]))}
    assert (lgbm["preprocess"].scaling, lgbm["preprocess"].impute) == ("none", "none")
    forest = policy.write_initial(ctx, cards["random_forest"])
    assert "n_jobs" not in forest and "random_state=SEED" in forest  # the executor sets threads, the task the seed


def test_cards_without_an_estimator_or_for_another_task_type_get_no_script(contracts, policy):
    web = ModelCard(name="tabnet", family="neural_net", task_types=["classification"], why="from a blog",
                    example_code="import tabnet", source="web")
    assert policy.write_initial(contracts["binary"].ctx, web) is None
    classifier_only = ModelCard(name="nb", family="naive_bayes", task_types=["classification"], why="",
                                example_code="", estimator=Estimator(classification="sklearn.naive_bayes.GaussianNB"))
    assert policy.write_initial(contracts["regression"].ctx, classifier_only) is None


def test_the_ablation_splitter_finds_every_marked_block_with_its_spec(contracts, policy):
    for contract in contracts.values():
        code = policy.write_initial(contract.ctx, cards_for(contract.ctx)["lightgbm"])
        blocks = split_blocks(code)
        assert [b.kind for b in blocks] == list(KINDS)
        for b in blocks:
            assert block_spec(b.source, b.kind) is not None, b.key


def test_same_inputs_give_the_same_scripts_and_plans(contracts):
    ctx = contracts["binary"].ctx
    card = cards_for(ctx)["lightgbm"]
    first, second = make_heuristic_policy({}), make_heuristic_policy({})
    code = first.write_initial(ctx, card)
    assert code == second.write_initial(ctx, card)
    assert first.plan_refinement(ctx, code, info(code, "model"), NO_ABLATION, [], 10) == \
        second.plan_refinement(ctx, code, info(code, "model"), NO_ABLATION, [], 10)


def test_the_seed_option_sets_the_scripts_random_state(contracts):
    ctx = contracts["binary"].ctx
    code = make_heuristic_policy({"seed": 41}).write_initial(ctx, cards_for(ctx)["random_forest"])
    assert "SEED = 41" in code


# --- refinement ----------------------------------------------------------------------------------------------------

def _category(plan: str) -> str:
    name, args = parse_plan(plan)
    return f"{name}:{','.join(sorted(args))}" if name in ("set_preprocess", "set_train") else name


@pytest.mark.slow
def test_each_plan_category_splices_in_and_the_script_still_runs(contracts, policy, drafts):
    """One plan of every category (per block field), implemented, spliced and run: it changes the code, keeps the
    contract, and most change the score too."""
    picks: dict[str, tuple[Contract, str, str]] = {}
    for key, card in (("binary", "lightgbm"), ("wide", "svm"), ("regression", "random_forest")):
        contract = contracts[key]
        code = drafts[key][card].code
        for kind in ("preprocess", "model", "train"):
            for plan in policy.plan_refinement(contract.ctx, code, info(code, kind), NO_ABLATION, [], 100):
                if _category(plan) != "tune":  # a 30 s study: test_space_ops runs shorter ones
                    picks.setdefault(_category(plan), (contract, code, plan, kind))
    expected = {"set_preprocess:encoding", "set_preprocess:scaling", "set_preprocess:missing_indicators",
                "set_preprocess:impute", "set_preprocess:log1p_skewed", "set_preprocess:pair_top",
                "set_preprocess:count_features", "set_preprocess:text", "set_preprocess:datetime_parts",
                "set_params", "swap_model", "add_member", "set_target", "set_train:folds", "set_train:early_stopping"}
    assert expected <= set(picks)
    jobs = [(contract, refined(policy, contract.ctx, code, kind, plan))
            for contract, code, plan, kind in picks.values()]
    changed_score = 0
    for (contract, base_code, plan, _), job, run in zip(picks.values(), jobs, run_many(jobs)):
        assert job[1] != base_code
        assert_contract_kept(contract, run)
        base = run_script(contract, base_code)
        changed_score += run.score != pytest.approx(base.score, abs=1e-9)
    assert changed_score >= 0.7 * len(jobs)


def test_plans_never_repeat_the_history(contracts, policy):
    ctx = contracts["binary"].ctx
    code = policy.write_initial(ctx, cards_for(ctx)["lightgbm"])
    for kind in ("preprocess", "model", "train"):
        history: list[PlanRecord] = []
        while plans := policy.plan_refinement(ctx, code, info(code, kind), NO_ABLATION, history, 2):
            assert len(plans) <= 2 and not set(plans) & {h.plan for h in history}
            history += [PlanRecord(plan=p, score=0.5, status="ok") for p in plans]
        assert len(history) >= 3


def test_a_move_that_helped_is_followed_by_a_stronger_one_in_the_same_direction(contracts, policy):
    ctx = contracts["binary"].ctx
    code = policy.write_initial(ctx, cards_for(ctx)["lightgbm"])
    model = info(code, "model")
    first = policy.plan_refinement(ctx, code, model, NO_ABLATION, [], 1)[0]
    name, args = parse_plan(first)
    ablation = AblationView(base_score=0.95, maximize=True)
    helped = [PlanRecord(plan=first, score=0.96, status="ok")]
    follow_up = parse_plan(policy.plan_refinement(ctx, code, model, ablation, helped, 1)[0])
    assert follow_up[0] == name and follow_up[1]["move"] == args["move"] and follow_up[1]["strength"] == 2
    hurt = [PlanRecord(plan=first, score=0.94, status="ok")]
    after_hurt = [parse_plan(p)[1].get("move") for p in policy.plan_refinement(ctx, code, model, ablation, hurt, 3)]
    assert "faster_learning" in after_hurt  # slower learning hurt: the opposite direction comes early
    assert all(parse_plan(p)[1].get("strength", 1) == 1
               for p in policy.plan_refinement(ctx, code, model, ablation, hurt, 20))


def test_plans_proposed_together_turn_different_knobs(contracts, policy):
    ctx = contracts["binary"].ctx
    code = policy.write_initial(ctx, cards_for(ctx)["lightgbm"])
    moves = [parse_plan(p)[1]["move"] for p in policy.plan_refinement(ctx, code, info(code, "model"), NO_ABLATION, [], 2)]
    assert moves == ["slower_learning", "more_leaves"]  # not slower and faster learning in one batch
    folds = [parse_plan(p)[1] for p in policy.plan_refinement(ctx, code, info(code, "train"), NO_ABLATION, [], 2)]
    assert folds == [{"folds": 5}, {"calibration": "auto"}]  # one bagging plan per batch, not 5 and 3 folds


def test_implement_plan_gives_none_for_blocks_without_spec_and_foreign_ops(contracts, policy):
    ctx = contracts["binary"].ctx
    code = policy.write_initial(ctx, cards_for(ctx)["lightgbm"])
    llm_block = BlockInfo(key="model#0", kind="model", source="model = LGBMClassifier()")
    plan = policy.plan_refinement(ctx, code, info(code, "model"), NO_ABLATION, [], 1)[0]
    assert policy.implement_plan(ctx, code, llm_block, plan) is None
    assert policy.plan_refinement(ctx, code, llm_block, NO_ABLATION, [], 3) == []
    train_plan = policy.plan_refinement(ctx, code, info(code, "train"), NO_ABLATION, [], 1)[0]
    assert policy.implement_plan(ctx, code, info(code, "model"), train_plan) is None
    assert policy.implement_plan(ctx, code, info(code, "model"), "Use a bigger model.") is None


@pytest.mark.slow
def test_early_stopping_works_through_a_log_target_transform(contracts, policy, drafts):
    contract = contracts["regression"]
    code = drafts["regression"]["lightgbm"].code
    plans = policy.plan_refinement(contract.ctx, code, info(code, "model"), NO_ABLATION, [], 100)
    log_target = next(p for p in plans if parse_plan(p)[0] == "set_target" and parse_plan(p)[1]["target"] == "log1p")
    code = refined(policy, contract.ctx, code, "model", log_target)
    assert block_spec(info(code, "train").source, "train").early_stopping  # drafted to stop early
    plan = next(p for p in policy.plan_refinement(contract.ctx, code, info(code, "train"), NO_ABLATION, [], 100)
                if parse_plan(p)[1] == {"folds": 5})
    code = refined(policy, contract.ctx, code, "train", plan)
    assert "TransformedTargetRegressor" in code and "lightgbm.early_stopping" in code and "FOLDS = 5" in code
    run = run_script(contract, code)
    assert_contract_kept(contract, run)
    assert plausible(contract, run.score)


# --- ablation ----------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_simplified_blocks_run_and_are_simpler(contracts, policy):
    contract = contracts["regression"]
    ctx = contract.ctx
    code = policy.write_initial(ctx, cards_for(ctx)["lightgbm"])
    for kind, want in (("preprocess", {"pair_top": 4}), ("preprocess", {"encoding": "target"}),
                       ("train", {"folds": 5})):  # the draft already stops early
        plan = next(p for p in policy.plan_refinement(ctx, code, info(code, kind), NO_ABLATION, [], 100)
                    if parse_plan(p)[1] == want)
        code = refined(policy, ctx, code, kind, plan)
    jobs = []
    for kind in ("preprocess", "model", "train"):
        simpler = policy.simplify_block(ctx, code, info(code, kind))
        assert simpler is not None and len(simpler) < len(info(code, kind).source)
        jobs.append((contract, splice(code, block(code, kind), simpler)))
    for run in run_many(jobs):
        assert_contract_kept(contract, run)
    stopped = policy.write_initial(ctx, cards_for(ctx)["lightgbm"])
    assert "fit_with_early_stopping" not in policy.simplify_block(ctx, stopped, info(stopped, "train"))  # full rounds
    plain = policy.write_initial(ctx, cards_for(ctx)["linear"])
    assert policy.simplify_block(ctx, plain, info(plain, "train")) is None  # a plain fit is as simple as it gets
    assert policy.simplify_block(ctx, plain, info(plain, "imports")) is None


def test_ablation_summary_states_the_base_score_and_the_block_that_matters_most(contracts, policy):
    ctx = contracts["binary"].ctx
    summary = AblationSummary(base_score=0.95, maximize=True, rows=[
        AblationRow("preprocess#0", "preprocess", "simplify", "", "ok", 0.94, 0.01),
        AblationRow("model#0", "model", "simplify", "", "ok", 0.90, 0.05),
        AblationRow("train#0", "train", "simplify", "", "error", None, None),
    ])
    text = policy.summarize_ablation(ctx, summary.view())
    assert text.startswith("Base validation score 0.95 (roc_auc")
    assert text.index("model#0") < text.index("preprocess#0") and "contributes most" in text
    assert "train#0 failed" in text
    assert "No ablation variant ran" in policy.summarize_ablation(ctx, AblationView())


# --- merging -----------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_merge_blends_the_reference_model_into_the_base_and_runs(contracts, policy, drafts):
    contract = contracts["binary"]
    base, reference = drafts["binary"]["lightgbm"].code, drafts["binary"]["svm"].code
    merged = policy.merge(contract.ctx, base, reference)
    members = block_spec(info(merged, "model").source, "model").members
    assert [m.estimator for m in members] == ["lightgbm.LGBMClassifier", "sklearn.svm.SVC"]
    assert {m.weight for m in members} == {1.0}
    assert members[1].scale and members[1].impute  # the base leaves gaps and scales nothing; the SVM needs both
    assert info(merged, "preprocess").source == info(base, "preprocess").source
    run = run_script(contract, merged)
    assert_contract_kept(contract, run)
    assert plausible(contract, run.score)
    assert policy.merge(contract.ctx, merged, reference) is None  # nothing new to blend in
    assert policy.merge(contract.ctx, base, "print('an LLM script')") is None


# --- ensembling --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ensemble_inputs(contracts, policy, drafts) -> dict[str, tuple[Path, list[CandidateInfo]]]:
    """Per task, an input folder with three real candidates' outputs under candidates/<name>/."""
    out = {}
    for key, contract in contracts.items():
        names = ["lightgbm", "linear", "random_forest"]
        runs = [drafts[key][n] for n in names] if key in drafts else run_many(
            [(contract, policy.write_initial(contract.ctx, cards_for(contract.ctx)[n])) for n in names])
        folder = contract.root / "ensemble_input"
        shutil.copytree(contract.input, folder)
        candidates = []
        for name, run in zip(names, runs):
            assert_contract_kept(contract, run)
            (folder / "candidates" / name).mkdir(parents=True)
            for file in ("val_predictions.csv", "submission.csv"):
                shutil.copyfile(run.workdir / file, folder / "candidates" / name / file)
            candidates.append(CandidateInfo(name=name, score=run.score, model=name))
        out[key] = (folder, candidates)
    return out


@pytest.mark.slow
def test_every_ensemble_plan_runs_on_real_candidate_outputs(contracts, policy, ensemble_inputs):
    jobs, labels = [], []
    for key, contract in contracts.items():
        folder, candidates = ensemble_inputs[key]
        history: list[PlanRecord] = []
        while (plan := policy.plan_ensemble(contract.ctx, candidates, history)) is not None:
            assert plan not in {h.plan for h in history}
            code = policy.implement_ensemble(contract.ctx, candidates, plan)
            assert leakage_findings(code) == []
            jobs.append((contract, code, folder))
            labels.append((key, parse_plan(plan)[1]["method"]))
            history.append(PlanRecord(plan=plan, score=None, status="ok"))
    assert {method for _, method in labels} == {"mean", "weighted", "stacking", "rank", "top"}
    with ThreadPoolExecutor(WORKERS) as pool:
        runs = list(pool.map(lambda job: run_script(*job[:2], input_dir=job[2]), jobs))
    for (key, method), run in zip(labels, runs):
        assert_contract_kept(contracts[key], run)
        assert plausible(contracts[key], run.score), f"{key}/{method}: {run.score}"


@pytest.mark.slow
def test_stacking_scores_out_of_fold_and_refits_on_all_validation_rows_for_test(contracts, policy, ensemble_inputs):
    contract = contracts["binary"]
    folder, candidates = ensemble_inputs["binary"]
    history: list[PlanRecord] = []
    while parse_plan(plan := policy.plan_ensemble(contract.ctx, candidates, history))[1]["method"] != "stacking":
        history.append(PlanRecord(plan=plan, score=None, status="ok"))
    run = run_script(contract, policy.implement_ensemble(contract.ctx, candidates, plan), input_dir=folder)
    assert_contract_kept(contract, run)
    # A meta-model fitted on every validation row and graded on them would score these rows in-sample; the
    # written validation predictions must differ from that.
    valid = pd.read_csv(folder / "valid.csv")
    features = []
    for c in candidates:
        p = pd.read_csv(folder / "candidates" / c.name / "val_predictions.csv").set_index("id").loc[valid["id"]]
        p = np.clip(p[contract.ctx.target].to_numpy(dtype=float), 1e-6, 1 - 1e-6)
        features.append(np.log(p / (1 - p)))
    y = valid[contract.ctx.target].to_numpy()
    in_sample = LogisticRegression(C=1.0, max_iter=2000).fit(np.column_stack(features), y)
    in_sample = in_sample.predict_proba(np.column_stack(features))[:, 1]
    written = pd.read_csv(run.workdir / "val_predictions.csv")[contract.ctx.target].to_numpy()
    assert not np.allclose(written, in_sample, atol=1e-4)
    assert "cross_val_predict" in run.code


@pytest.mark.slow
def test_rmsle_ensembles_combine_on_the_log_scale(contracts, policy, ensemble_inputs):
    regression = contracts["regression"]
    contract = Contract(regression.ctx.model_copy(update={"metric": "rmsle"}), regression.root, regression.truth)
    folder, candidates = ensemble_inputs["regression"]
    history: list[PlanRecord] = []
    jobs = []
    for _ in range(2):  # the mean and the stacker
        plan = policy.plan_ensemble(contract.ctx, candidates, history)
        history.append(PlanRecord(plan=plan, score=None, status="ok"))
        code = policy.implement_ensemble(contract.ctx, candidates, plan)
        assert "np.log1p(np.clip(values, 0, None))" in code
        jobs.append(code)
    spread = np.log1p(pd.read_csv(contract.truth)[contract.ctx.target]).std()
    for code in jobs:
        run = run_script(contract, code, input_dir=folder)
        assert_contract_kept(contract, run)
        assert run.score < 0.9 * spread  # well below predicting the mean log


def test_ensemble_planning_needs_two_candidates_and_stops_when_all_were_tried(contracts, policy):
    ctx = contracts["regression"].ctx
    one = [CandidateInfo(name="a", score=50.0)]
    assert policy.plan_ensemble(ctx, one, []) is None
    two = one + [CandidateInfo(name="b", score=55.0)]
    history = []
    while (plan := policy.plan_ensemble(ctx, two, history)) is not None:
        history.append(PlanRecord(plan=plan, score=50.0, status="ok"))
    assert [parse_plan(h.plan)[1]["method"] for h in history] == ["mean", "stacking", "weighted"]
    assert parse_plan(history[0].plan)[1]["members"] == ["a", "b"]  # lower RMSE first
    assert policy.implement_ensemble(ctx, two, "average them please") is None


# --- debugging and checks ----------------------------------------------------------------------------------------

@pytest.mark.slow
def test_debug_swaps_a_model_whose_library_is_missing_for_a_scikit_learn_one(contracts, policy):
    contract = contracts["binary"]
    ctx = contract.ctx
    card = ModelCard(name="boosty", family="gradient_boosting", task_types=["classification"], why="",
                     example_code="", estimator=Estimator(classification="boostylib.BoostyClassifier",
                                                          params={"rounds": 100}, handles_missing=True))
    broken = run_script(contract, policy.write_initial(ctx, card))
    assert broken.returncode != 0 and "ModuleNotFoundError" in broken.stderr
    fixed = policy.debug(ctx, broken.code, broken.stderr[-2000:])
    member = block_spec(info(fixed, "model").source, "model").members[0]
    assert member.estimator == "sklearn.ensemble.HistGradientBoostingClassifier"
    run = run_script(contract, fixed)
    assert_contract_kept(contract, run)


@pytest.mark.slow
def test_debug_turns_on_imputation_when_a_model_meets_missing_values(contracts, policy, drafts):
    contract = contracts["wide"]
    ctx = contract.ctx
    code = drafts["wide"]["svm"].code
    no_imputation = next(p for p in policy.plan_refinement(ctx, code, info(code, "preprocess"), NO_ABLATION, [], 100)
                         if parse_plan(p)[1] == {"impute": "constant"})
    # An LLM-like edit: imputation switched off, which the SVM cannot live with.
    code = refined(policy, ctx, code, "preprocess", no_imputation).replace(
        '"impute": "constant"', '"impute": "none"').replace(
        'SimpleImputer(strategy="constant", fill_value=0.0), ', "")
    broken = run_script(contract, code)
    assert broken.returncode != 0 and "NaN" in broken.stderr
    fixed = policy.debug(ctx, code, broken.stderr[-2000:])
    assert fixed is not None
    assert_contract_kept(contract, run_script(contract, fixed))


def test_debug_simplifies_the_block_named_in_the_traceback(contracts, policy):
    ctx = contracts["binary"].ctx
    code = policy.write_initial(ctx, cards_for(ctx)["lightgbm"])
    plan = next(p for p in policy.plan_refinement(ctx, code, info(code, "train"), NO_ABLATION, [], 100)
                if parse_plan(p)[1] == {"folds": 5})
    code = refined(policy, ctx, code, "train", plan)
    line = next(start for kind, _, start, _ in marked_blocks(code) if kind == "train") + 3
    error = (f'Traceback (most recent call last):\n  File "/work/runs/x/solution.py", line {line}, in <module>\n'
             f'  File "/venv/lib/python3.12/site-packages/sklearn/base.py", line 1389, in wrapper\n'
             f"ValueError: something only this fold split triggers")
    fixed = policy.debug(ctx, code, error)
    assert block_spec(info(fixed, "train").source, "train").folds == 1
    assert info(fixed, "model").source == info(code, "model").source
    assert policy.debug(ctx, "print(1/0)", "ZeroDivisionError: division by zero") is None


def test_fix_leakage_rerenders_a_block_that_fits_on_validation_rows(contracts, policy):
    ctx = contracts["binary"].ctx
    code = policy.write_initial(ctx, cards_for(ctx)["linear"])
    leaky = code.replace("X_valid = preprocessor.transform(X_valid)", "X_valid = preprocessor.fit_transform(X_valid)")
    assert leaky != code and leakage_findings(leaky)
    fixed = policy.fix_leakage(ctx, leaky, [f.message for f in leakage_findings(leaky)])
    assert fixed == code and leakage_findings(fixed) == []
    assert policy.fix_leakage(ctx, code, []) is None  # nothing to re-render
    assert policy.fix_leakage(ctx, "model.fit(X_test, y)", ["line 1: ..."]) is None


@pytest.mark.slow
def test_use_all_data_joins_a_provided_file_on_a_shared_key(tmp_path, policy):
    contract = build_contract(tmp_path / "joined", "cancer", "roc_auc")
    rng = np.random.default_rng(1)
    for name in ("train", "valid", "test"):
        frame = pd.read_csv(contract.input / f"{name}.csv")
        frame["clinic_id"] = rng.integers(0, 20, len(frame))
        frame.to_csv(contract.input / f"{name}.csv", index=False)
    visits = pd.DataFrame({"clinic_id": rng.integers(0, 20, 200), "staff": rng.normal(10, 2, 200)})
    visits.to_csv(contract.input / "clinics.csv", index=False)
    (contract.input / "notes.txt").write_text("not a table")
    ctx = contract.ctx.model_copy(update={"columns": contract.ctx.columns + [ColumnInfo(name="clinic_id", dtype="numeric")],
                                          "files": contract.ctx.files + ["clinics.csv", "notes.txt"]})
    code = policy.write_initial(ctx, cards_for(ctx)["lightgbm"])
    task = SimpleNamespace(public_files={"clinics.csv": contract.input / "clinics.csv"})
    joined = make_heuristic_policy({}, task=task).use_all_data(ctx, code, ["clinics.csv", "notes.txt"])
    assert '"./input/clinics.csv"' in joined
    extended = Contract(ctx, contract.root, contract.truth)
    run = run_script(extended, joined)
    assert "joined on 'clinic_id', 2 columns added" in run.stdout  # the mean staff count and the visit count
    assert_contract_kept(extended, run)
    assert policy.use_all_data(ctx, joined, ["clinics.csv"]) is None  # already joined
    assert policy.use_all_data(ctx, code, ["notes.txt"]) is None


def test_search_results_map_to_the_closest_catalogue_cards(contracts, policy):
    ctx = contracts["regression"].ctx
    results = [{"title": "Winning with XGBoost", "href": "https://a", "body": "xgboost and a random forest"},
               {"title": "Random forests for tabular data", "href": "https://b", "body": "bagging trees"},
               {"title": "Naive Bayes explained", "href": "https://c", "body": "a classifier"}]
    cards = policy.summarize_search(ctx, results, 5)
    assert [c.name for c in cards] == ["random_forest", "hist_gradient_boosting"]  # naive Bayes cannot regress
    assert cards[0].source == "web" and "https://a" in cards[0].why
    assert policy.summarize_search(ctx, [{"title": "cooking", "href": "x", "body": "pasta"}], 5) is None


def test_policy_registers_as_heuristic_and_rejects_unknown_options():
    import plugins.heuristic as plugin

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(plugin, name="heuristic")
    registered = {}
    pm.hook.register_policies(register=lambda name, factory: registered.setdefault(name, factory))
    made = registered["heuristic"]({"seed": 3}, task=None, store=None, registry=None)
    assert made.name == "heuristic"
    with pytest.raises(PluginError, match="unknown option 'temperature'"):
        registered["heuristic"]({"temperature": 0.7})
    with pytest.raises(PluginError, match="must be an integer"):
        registered["heuristic"]({"seed": "7"})
