"""The wider solution space (issue #16 part 3): XGBoost and CatBoost, pair differences and group statistics, splines
for linear models on small data, probability calibration and an Optuna study as a refinement plan. Every option
round-trips through the block's marker line, every op is offered with a plan text and applied by ``ops.apply_op``,
and the scripts they make are rendered and really run on the contract folders of test_heuristic."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.checks import leakage_findings
from core.executor import ExecutorOptions, RunRequest
from core.local_executor import LocalExecutor
from core.policy import AblationView, ColumnInfo, PlanRecord
from core.scoring import score_predictions
from plugins.heuristic import make_heuristic_policy
from space import ops
from space.ops import parse_plan
from space.render import block_spec, marker, parse_marker, render_block, specs_of
from space.specs import MemberSpec, ModelSpec, PreprocessSpec, TrainSpec, TuneSpec
from test_heuristic import (
    Contract,
    assert_contract_kept,
    build_contract,
    frame_contract,
    cards_for,
    info,
    plausible,
    refined,
    run_many,
    run_script,
)

NO_ABLATION = AblationView()
catboost = pytest.importorskip("catboost")
optuna = pytest.importorskip("optuna")


def with_band(contract: Contract, root: Path) -> Contract:
    """The contract plus an informative categorical column (a banded copy of its strongest numeric column)."""
    source = {"diabetes": "bmi", "cancer": "worst_radius", "wine": "flavanoids"}
    column = next(v for k, v in source.items() if (contract.input / "train.csv").read_text().count(v))
    edges = pd.read_csv(contract.input / "train.csv")[column].quantile([0.25, 0.5, 0.75]).to_numpy()
    (root / "input").mkdir(parents=True)
    for name in ("train", "valid", "test", "sample_submission"):
        frame = pd.read_csv(contract.input / f"{name}.csv")
        if name != "sample_submission":
            frame["band"] = np.array(["low", "mid", "high", "top"])[np.searchsorted(edges, frame[column].fillna(0))]
        frame.to_csv(root / "input" / f"{name}.csv", index=False)
    truth = root / "valid_truth.csv"
    truth.write_bytes(contract.truth.read_bytes())
    ctx = contract.ctx.model_copy(update={
        "columns": contract.ctx.columns + [ColumnInfo(name="band", dtype="categorical", unique=4)]})
    return Contract(ctx, root, truth)


@pytest.fixture(scope="module")
def contracts(tmp_path_factory) -> dict[str, Contract]:
    base = tmp_path_factory.mktemp("space-ops")
    plain = {
        "binary": build_contract(base / "binary", "cancer", "roc_auc"),
        "wide": build_contract(base / "wide", "wine", "logloss", wide=True),
        "labels": build_contract(base / "labels", "wine", "accuracy"),
        "regression": build_contract(base / "regression", "diabetes", "rmse"),
    }
    plain["banded"] = with_band(plain["regression"], base / "banded")
    return plain


@pytest.fixture(scope="module")
def policy():
    return make_heuristic_policy({})


def plans(policy, ctx, code, kind, history=()):
    return policy.plan_refinement(ctx, code, info(code, kind), NO_ABLATION, list(history), 500)


def plan_where(policy, ctx, code, kind, test) -> str:
    found = [p for p in plans(policy, ctx, code, kind) if test(*parse_plan(p))]
    assert found, f"no {kind} plan matches"
    return found[0]


def apply(policy, contract, code, kind, test) -> str:
    return refined(policy, contract.ctx, code, kind, plan_where(policy, contract.ctx, code, kind, test))


# --- specs and ops, without running anything --------------------------------------------------------------------

def test_every_new_option_round_trips_through_the_marker_line(contracts):
    ctx = contracts["regression"].ctx
    specs = {
        "preprocess": PreprocessSpec(pair_top=3, pair_differences=True, group_stats=2, splines=True),
        "model": ModelSpec(members=[
            MemberSpec(estimator="catboost.CatBoostRegressor", params={"depth": 5},
                       tune=TuneSpec(seconds=12.5, trials=7, folds=4, max_rows=500)),
            MemberSpec(estimator="xgboost.XGBRegressor", params={"max_depth": 4})]),
        "train": TrainSpec(folds=3, early_stopping=True, calibration="sigmoid"),
    }
    for kind, spec in specs.items():
        assert parse_marker(marker(kind, spec)) == (kind, spec)
        assert block_spec(render_block(ctx, kind, spec), kind) == spec
    old = '# [block: preprocess] {"impute": "median", "encoding": "ordinal", "pair_top": 4}'  # written before them
    assert parse_marker(old)[1] == PreprocessSpec(pair_top=4)


def test_catboost_and_xgboost_moves_turn_their_own_parameters(contracts, policy):
    ctx = contracts["regression"].ctx
    for name, own in (("catboost", {"iterations", "learning_rate", "depth", "l2_leaf_reg"}),
                      ("xgboost", {"n_estimators", "learning_rate", "max_depth", "min_child_weight", "reg_lambda",
                                   "subsample", "colsample_bytree"})):
        code = policy.write_initial(ctx, cards_for(ctx)[name])
        moved = [parse_plan(p)[1] for p in plans(policy, ctx, code, "model") if parse_plan(p)[0] == "set_params"]
        assert {a["move"] for a in moved} >= {"slower_learning", "deeper", "shallower", "more_regularisation",
                                              "less_regularisation"}
        for args in moved:  # CatBoost takes aliases (n_estimators, max_depth, reg_lambda): never set one beside its name
            assert set(args["params"]) <= own, args
        member = block_spec(info(code, "model").source, "model").members[0]
        assert "random_state" not in member.params and "thread_count" not in member.params


def test_the_new_ops_are_offered_with_informative_texts(contracts, policy):
    banded = contracts["banded"].ctx
    code = policy.write_initial(banded, cards_for(banded)["lightgbm"])
    offered = {ops.group_of(*parse_plan(p)): p for p in plans(policy, banded, code, "preprocess")}
    assert "differences" in offered["preprocess.pair_differences=True"]
    assert "per category, the mean and standard deviation" in offered["preprocess.group_stats+"]
    assert "cross-fitted mean target" in offered["preprocess.encoding=target"]
    assert "how often each category occurs" in offered["preprocess.encoding=count"]
    tune = next(p for p in plans(policy, banded, code, "model") if parse_plan(p)[0] == "tune")
    assert "Optuna" in tune and "training rows only" in tune and "num_leaves" in tune
    assert parse_plan(tune)[1] == {"member": 0, "seconds": ops.TUNE_SECONDS}
    train = [parse_plan(p)[1] for p in plans(policy, banded, code, "train")]
    assert {"folds": 5} in train  # bagging of the final model on all rows
    assert {"early_stopping": False} in train  # the draft stops early: the full rounds are the change on offer
    assert not any("calibration" in a for a in train)  # RMSE reads no probabilities
    wide = contracts["wide"].ctx
    wide_code = policy.write_initial(wide, cards_for(wide)["lightgbm"])
    assert {"calibration": "auto"} in [parse_plan(p)[1] for p in plans(policy, wide, wide_code, "train")]
    labels = contracts["labels"].ctx
    label_code = policy.write_initial(labels, cards_for(labels)["lightgbm"])
    assert not any("calibration" in parse_plan(p)[1] for p in plans(policy, labels, label_code, "train"))


def test_the_existing_ops_keep_their_keys(contracts, policy):
    """rl/ datasets recorded (op, args) of the ops that existed before: they must still be offered as they were."""
    ctx = contracts["binary"].ctx
    code = policy.write_initial(ctx, cards_for(ctx)["lightgbm"])
    model = [parse_plan(p) for p in plans(policy, ctx, code, "model")]
    assert ("set_params", {"member": 0, "move": "slower_learning", "strength": 1,
                           "params": {"learning_rate": 0.025, "n_estimators": 1000}}) in model
    assert ("swap_model", {"member": 0, "estimator": "sklearn.ensemble.RandomForestClassifier"}) in model
    train = [parse_plan(p) for p in plans(policy, ctx, code, "train")]
    assert ("set_train", {"folds": 5}) in train and ("set_train", {"early_stopping": False}) in train
    full_rounds = refined(policy, ctx, code, "train", plan_where(policy, ctx, code, "train",
                                                                 lambda n, a: a == {"early_stopping": False}))
    assert ("set_train", {"early_stopping": True}) in [parse_plan(p) for p in plans(policy, ctx, full_rounds, "train")]


def test_tuning_rises_as_cheaper_moves_stop_helping(contracts, policy):
    ctx = contracts["binary"].ctx
    code = policy.write_initial(ctx, cards_for(ctx)["lightgbm"])
    model = info(code, "model")
    ablation = AblationView(base_score=0.95, maximize=True)
    first = policy.plan_refinement(ctx, code, model, ablation, [], 2)
    assert not any(parse_plan(p)[0] == "tune" for p in first)  # cheap moves come first
    history = [PlanRecord(plan=p, score=0.94, status="ok") for p in first]
    history += [PlanRecord(plan=p, score=0.94, status="ok") for p in policy.plan_refinement(ctx, code, model, ablation,
                                                                                           history, 2)]
    assert parse_plan(policy.plan_refinement(ctx, code, model, ablation, history, 1)[0])[0] == "tune"
    helped = [PlanRecord(plan=first[0], score=0.96, status="ok")]
    assert parse_plan(policy.plan_refinement(ctx, code, model, ablation, helped, 1)[0])[0] != "tune"


def test_a_small_data_linear_draft_gets_splines_and_an_op_to_drop_them(contracts, policy):
    ctx = contracts["regression"].ctx  # 265 training rows
    cards = cards_for(ctx)
    assert list(cards)[0] == "linear"  # the catalogue puts the linear model first on few rows
    code = policy.write_initial(ctx, cards["linear"])
    pre = block_spec(info(code, "preprocess").source, "preprocess")
    assert (pre.splines, pre.scaling, pre.encoding) == (True, "standard", "onehot")
    assert "SplineTransformer(" in code
    assert {"splines": False} in [parse_plan(p)[1] for p in plans(policy, ctx, code, "preprocess")]
    big = ctx.model_copy(update={"n_train": 50_000})
    big_code = policy.write_initial(big, cards_for(big)["linear"])
    assert block_spec(info(big_code, "preprocess").source, "preprocess").splines is False
    assert {"splines": True} in [parse_plan(p)[1] for p in plans(policy, big, big_code, "preprocess")]
    trees = policy.write_initial(big, cards_for(big)["lightgbm"])
    assert not any("splines" in parse_plan(p)[1] for p in plans(policy, big, trees, "preprocess"))


def test_simplify_and_cheaper_repairs_drop_the_study(contracts, policy):
    ctx = contracts["binary"].ctx
    code = policy.write_initial(ctx, cards_for(ctx)["catboost"])
    tuned = apply(policy, contracts["binary"], code, "model", lambda n, a: n == "tune")
    simple = policy.simplify_block(ctx, tuned, info(tuned, "model"))
    assert "optuna" not in simple and block_spec(simple, "model").members[0].tune is None
    assert block_spec(simple, "model").members[0].params == {"logging_level": "Silent", "allow_writing_files": False}
    fixed = policy.debug(ctx, tuned, "killed after the 120 s timeout")
    member = specs_of(fixed)["model"].members[0]
    assert member.tune is None and member.params["iterations"] == 400


# --- rendered and run ---------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_xgboost_and_catboost_draft_early_stop_and_bag(contracts, policy):
    jobs = []
    for key in ("binary", "wide", "regression"):
        contract = contracts[key]
        for name in ("xgboost", "catboost"):
            code = policy.write_initial(contract.ctx, cards_for(contract.ctx)[name])
            assert block_spec(info(code, "train").source, "train").early_stopping  # drafted to stop early
            jobs.append((contract, code))
    regression = contracts["regression"]
    code = policy.write_initial(regression.ctx, cards_for(regression.ctx)["catboost"])
    code = apply(policy, regression, code, "model", lambda n, a: n == "set_target" and a["target"] == "log1p")
    code = apply(policy, regression, code, "train", lambda n, a: a == {"folds": 5})  # bagged, each fold stops
    assert "FOLDS = 5" in code and "TransformedTargetRegressor" in code and "early_stopping_rounds" in code
    jobs.append((regression, code))
    for (contract, code), run in zip(jobs, run_many(jobs)):
        assert_contract_kept(contract, run)
        assert plausible(contract, run.score), f"{contract.ctx.name}: {run.score}"
        assert not (run.workdir / "catboost_info").exists()


def test_boosting_is_drafted_with_early_stopping_and_a_merge_into_a_linear_base_keeps_it(policy, contracts,
                                                                                          tmp_path):
    # chile-vote in the bench: 500 rounds at rate 0.05 made LightGBM's probabilities overconfident (log loss 1.64
    # on the search rows, against the linear draft's 0.83), so the merge never took it
    frame = pd.read_csv(Path(__file__).resolve().parents[1] / "bench" / "tasks" / "chile-vote" / "train.csv")
    contract = frame_contract(tmp_path / "chile", frame.dropna(), "vote", "logloss", name="chile-vote", wide=True)
    ctx = contract.ctx
    cards = cards_for(ctx)
    lightgbm, linear = (policy.write_initial(ctx, cards[name]) for name in ("lightgbm", "linear"))

    def stops(code):
        return block_spec(info(code, "train").source, "train").early_stopping

    assert stops(lightgbm) and not stops(linear)
    binary = contracts["binary"].ctx  # ROC AUC too: wilms-relapse's LightGBM draft went from 0.680 to 0.711
    assert stops(policy.write_initial(binary, cards_for(binary)["lightgbm"]))
    full_rounds = refined(policy, ctx, lightgbm, "train", plan_where(
        policy, ctx, lightgbm, "train", lambda n, a: a == {"early_stopping": False}))
    merged = policy.merge(ctx, linear, lightgbm)
    assert stops(merged) and [m.estimator for m in block_spec(info(merged, "model").source, "model").members] == [
        "sklearn.linear_model.LogisticRegression", "lightgbm.LGBMClassifier"]
    merged_full = policy.merge(ctx, linear, full_rounds)
    assert not stops(merged_full)
    runs = run_many([(contract, code) for code in (lightgbm, full_rounds, merged, merged_full)])
    for run in runs:
        assert_contract_kept(contract, run)
    stopped, full, blend, blend_full = (run.score for run in runs)
    print(f"\nlog loss: LightGBM stopped {stopped:.4f}, 500 rounds {full:.4f}; blended with the linear model "
          f"{blend:.4f} and {blend_full:.4f}")
    assert stopped < full - 0.2
    assert blend < blend_full - 0.05


def test_catboost_takes_its_thread_count_from_the_executors_share(contracts, policy, tmp_path):
    contract = contracts["binary"]
    code = policy.write_initial(contract.ctx, cards_for(contract.ctx)["catboost"])
    assert "thread_count=THREADS" in code and 'THREADS = max(1, int(os.environ.get("OMP_NUM_THREADS")' in code
    probe = code + '\nprint("threads", fitted[0][1].get_params()["thread_count"])\n'
    executor = LocalExecutor(ExecutorOptions(workers=64, isolation="auto", cache=False), out_dir=tmp_path)
    result = executor.run(RunRequest(code=probe, input_dir=contract.input, timeout=300))
    assert result.ok, result.error_tail
    assert "threads 1" in result.stdout_tail  # 64 workers: a share of one core each
    score, problem = score_predictions(result.val_predictions, contract.truth, contract.ctx, contract.metric)
    assert problem == "" and plausible(contract, score)


@pytest.mark.slow
def test_feature_engineering_ops_render_and_run(contracts, policy):
    contract = contracts["banded"]
    base = policy.write_initial(contract.ctx, cards_for(contract.ctx)["lightgbm"])
    diffs = apply(policy, contract, base, "preprocess", lambda n, a: a.get("pair_differences") is True)
    groups = apply(policy, contract, base, "preprocess", lambda n, a: a == {"group_stats": 1})
    wider = apply(policy, contract, groups, "preprocess", lambda n, a: a == {"encoding": "target"})
    assert '_minus_{b}"] = frame[a] - frame[b]' in diffs
    assert "group_tables = {(g, c): X_train.groupby(g)[c]" in groups
    for code in (diffs, groups, wider):
        assert leakage_findings(code) == []
    probe = '\nprint("columns", sorted(X_train.columns))\n'
    jobs = [(contract, base), (contract, diffs + probe), (contract, groups + probe), (contract, wider)]
    runs = run_many(jobs)
    for (_, code), run in zip(jobs, runs):
        assert_contract_kept(contract, run)
        assert plausible(contract, run.score)
    assert "_minus_" in runs[1].stdout
    assert "_mean_by_band" in runs[2].stdout and "_minus_mean_by_band" in runs[2].stdout
    assert len({round(r.score, 9) for r in runs}) == len(runs)  # each op changes the predictions


def test_group_statistics_are_fitted_on_the_training_rows_only(contracts, policy, tmp_path):
    """Changing the validation and test rows' numbers leaves the statistics the test rows get as they were."""
    contract = contracts["banded"]
    base = policy.write_initial(contract.ctx, cards_for(contract.ctx)["linear"])
    code = apply(policy, contract, base, "preprocess", lambda n, a: a == {"group_stats": 1})
    line = 'numeric += [f"{c}_{s}_by_{g}" for g, c in group_tables for s in ("mean", "std", "minus_mean")]\n'
    assert line in code
    code = code.replace(line, line + 'X_test[[c for c in X_test.columns if "_by_" in c]].to_csv("group_columns.csv", '
                        'index=False)\n')
    shifted = tmp_path / "input"
    shifted.mkdir()
    for name in ("train", "valid", "test", "sample_submission"):
        frame = pd.read_csv(contract.input / f"{name}.csv")
        if name in ("valid", "test"):
            frame["bmi"] = frame["bmi"] * 10 + 1  # the group means would move if these rows were in them
        frame.to_csv(shifted / f"{name}.csv", index=False)
    first, second = run_script(contract, code), run_script(contract, code, input_dir=shifted)
    assert first.returncode == 0 and second.returncode == 0, second.stderr[-2000:]
    a, b = (pd.read_csv(r.workdir / "group_columns.csv") for r in (first, second))
    stats = [c for c in a.columns if "_minus_mean_by_" not in c]  # a row's distance from its mean is its own
    assert len(stats) == 6 and a[stats].equals(b[stats])
    assert not a["bmi_minus_mean_by_band"].equals(b["bmi_minus_mean_by_band"])


@pytest.mark.slow
def test_splines_and_calibration_render_and_run(contracts, policy):
    jobs = []
    for key in ("wide", "regression"):
        contract = contracts[key]
        linear = policy.write_initial(contract.ctx, cards_for(contract.ctx)["linear"])
        jobs += [(contract, linear), (contract, apply(policy, contract, linear, "preprocess",
                                                      lambda n, a: a == {"splines": False}))]
    contract = contracts["wide"]
    lgbm = policy.write_initial(contract.ctx, cards_for(contract.ctx)["lightgbm"])
    calibrated = apply(policy, contract, lgbm, "train", lambda n, a: a == {"calibration": "auto"})
    assert "CalibratedClassifierCV(blend_model" in calibrated and '"sigmoid"' in calibrated
    jobs.append((contract, calibrated))
    contract = contracts["binary"]  # a blend is calibrated as one soft-voting model
    linear = policy.write_initial(contract.ctx, cards_for(contract.ctx)["linear"])
    blend = apply(policy, contract, linear, "model", lambda n, a: n == "add_member" and "Forest" in a["estimator"])
    blend = apply(policy, contract, blend, "train", lambda n, a: a == {"calibration": "auto"})
    assert "VotingClassifier(" in blend
    jobs.append((contract, blend))
    for (contract, code), run in zip(jobs, run_many(jobs)):
        assert_contract_kept(contract, run)
        assert plausible(contract, run.score), f"{contract.ctx.name}: {run.score}"


def _tuning_statements(code: str) -> list[str]:
    """The model block's code that the study runs: every statement but the imports."""
    source = info(code, "model").source
    return [ast.unparse(node) for node in ast.parse(source).body if not isinstance(node, (ast.Import, ast.ImportFrom))]


@pytest.mark.slow
def test_an_optuna_study_gets_at_most_a_tenth_of_the_runs_budget_and_none_below_ten_seconds(contracts, policy):
    # every script built on a tuned member runs its study again: at 120 s, biopsy's 30 s study on extra trees
    # timed out at the end of the search, and chile-vote's made its next three steps take 20 s each
    ctx = contracts["banded"].ctx
    code = policy.write_initial(ctx, cards_for(ctx)["lightgbm"])

    def tune_args(budget):
        ctx_b = ctx.model_copy(update={"budget_seconds": budget})
        return [parse_plan(p)[1] for p in plans(policy, ctx_b, code, "model") if parse_plan(p)[0] == "tune"]

    assert tune_args(None) == [{"member": 0, "seconds": ops.TUNE_SECONDS}]  # outside a run: the full slice
    assert tune_args(3600) == [{"member": 0, "seconds": ops.TUNE_SECONDS}]
    assert tune_args(120) == [{"member": 0, "seconds": 12.0}]
    assert tune_args(60) == []
    at = {budget: ctx.model_copy(update={"budget_seconds": budget}) for budget in (120, 600)}
    tune_plan = next(p for p in plans(policy, at[120], code, "model") if parse_plan(p)[0] == "tune")
    other_plan = next(p for p in plans(policy, at[120], code, "model") if parse_plan(p)[0] != "tune")
    tuned = refined(policy, at[120], code, "model", tune_plan)
    # the study helped (RMSE: lower is better), so a longer one is offered next, if it is longer
    history = [PlanRecord(plan=tune_plan, score=0.8, status="ok"), PlanRecord(plan=other_plan, score=0.9, status="ok")]

    def longer(budget):
        return [parse_plan(p)[1] for p in plans(policy, at[budget], tuned, "model", history)
                if parse_plan(p)[0] == "tune"]

    assert longer(120) == []  # twice 12 s would pass the budget's share
    assert longer(600) == [{"member": 0, "seconds": 24.0}]


def test_the_optuna_study_never_sees_the_validation_rows(contracts, policy, tmp_path):
    contract = contracts["binary"]
    base = policy.write_initial(contract.ctx, cards_for(contract.ctx)["linear"])  # fast trials
    plan = plan_where(policy, contract.ctx, base, "model", lambda n, a: n == "tune")
    name, args = parse_plan(plan)
    # A few trials and no time limit: the study is deterministic, so two runs can be compared.
    plan = plan.replace(ops.Op(name, args, "", 0).tag, ops.Op(name, {**args, "seconds": 600, "trials": 8}, "", 0).tag)
    code = refined(policy, contract.ctx, base, "model", plan)
    assert block_spec(info(code, "model").source, "model").members[0].tune == TuneSpec(seconds=600, trials=8)
    statements = "\n".join(_tuning_statements(code))
    assert "study.optimize" in statements and "X_train" in statements
    assert not re.search(r"\b(valid|X_valid|y_valid|X_test|test)\b", statements)
    assert leakage_findings(code) == []
    # The validation rows' labels flipped and their features scrambled: the study's trials must not move.
    scrambled = tmp_path / "input"
    scrambled.mkdir()
    for file in ("train", "valid", "test", "sample_submission"):
        frame = pd.read_csv(contract.input / f"{file}.csv")
        if file == "valid":
            frame[contract.ctx.target] = 1 - frame[contract.ctx.target]
            numeric = frame.columns[1:5]
            frame[numeric] = frame[numeric].sample(frac=1.0, random_state=1).to_numpy()
        frame.to_csv(scrambled / f"{file}.csv", index=False)
    runs = [run_script(contract, code), run_script(contract, code, input_dir=scrambled)]
    lines = [[line for line in run.stdout.splitlines() if line.startswith("tuning member 1")] for run in runs]
    assert runs[0].returncode == 0, runs[0].stderr[-2000:]
    assert lines[0] and lines[0] == lines[1], lines
    assert "8 trials" in lines[0][0] and "LogisticRegression" in lines[0][0]
    assert_contract_kept(contract, runs[0])
    assert plausible(contract, runs[0].score)


@pytest.mark.slow
def test_tuning_runs_for_a_blend_member_within_its_time_slice(contracts, policy):
    contract = contracts["regression"]
    base = policy.write_initial(contract.ctx, cards_for(contract.ctx)["xgboost"])
    blend = apply(policy, contract, base, "model", lambda n, a: n == "add_member" and "Ridge" in a["estimator"])
    tuned = apply(policy, contract, blend, "model", lambda n, a: n == "tune" and a["member"] == 1)
    tuned = apply(policy, contract, tuned, "model", lambda n, a: n == "tune" and a["member"] == 0)
    tuned = tuned.replace('"seconds": 30.0', '"seconds": 4.0').replace("seconds=30.0", "seconds=4.0")
    assert "SPACE_2 = {'alpha': ('float', 0.001, 100.0, True)}" in tuned and "n_jobs=THREADS" in tuned
    run = run_script(contract, tuned)
    assert_contract_kept(contract, run)
    assert plausible(contract, run.score)
    assert re.search(r"tuning member 1 \(XGBRegressor\): \d+ trials in 4 s", run.stdout)
    assert re.search(r"tuning member 2 \(Ridge\): \d+ trials in 4 s", run.stdout)
    # The final run on every labelled row keeps the search's two folds beside its data: it studies for one fold's share
    # of the slice, as the reserve measured from the search assumes.
    final = contract.root / "final-input"
    final.mkdir(exist_ok=True)
    for file in contract.input.iterdir():
        if not (final / file.name).exists():
            (final / file.name).symlink_to(file)
    for fold in ("0", "1"):
        (final / "validation_folds" / fold).mkdir(parents=True, exist_ok=True)
    run = run_script(contract, tuned, input_dir=final)
    assert_contract_kept(contract, run)
    assert re.search(r"tuning member 1 \(XGBRegressor\): \d+ trials in 2 s", run.stdout), run.stdout


def test_for_an_mae_task_the_boosters_fit_the_median_and_explicit_params_still_win():
    from core.policy import TaskContext
    from space.draft import make_member

    ctx = TaskContext(name="t", goal="g", task_type="regression", metric="mae", maximize=False, proba=False,
                      target="y", id_column="id", prediction_columns=["y"], classes=[],
                      columns=[ColumnInfo(name="x", dtype="numeric", missing=0.0, unique=10)],
                      n_train=100, n_valid=20, n_test=20, files=[], seed=0)
    losses = {path: make_member(ctx, path, {}, None).params for path in (
        "lightgbm.LGBMRegressor", "xgboost.XGBRegressor", "catboost.CatBoostRegressor",
        "sklearn.ensemble.HistGradientBoostingRegressor", "sklearn.ensemble.RandomForestRegressor")}
    assert losses == {"lightgbm.LGBMRegressor": {"objective": "l1"},
                      "xgboost.XGBRegressor": {"objective": "reg:absoluteerror"},
                      "catboost.CatBoostRegressor": {"loss_function": "MAE"},
                      "sklearn.ensemble.HistGradientBoostingRegressor": {"loss": "absolute_error"},
                      "sklearn.ensemble.RandomForestRegressor": {}}
    assert make_member(ctx, "lightgbm.LGBMRegressor", {"objective": "huber"}, None).params == {"objective": "huber"}
    rmse = ctx.model_copy(update={"metric": "rmse"})
    assert make_member(rmse, "lightgbm.LGBMRegressor", {}, None).params == {}


def test_an_integer_code_column_is_offered_as_a_category_and_so_read_improves_political_informations_linear_draft(
        tmp_path, policy):
    # political-information's interviewer is a number naming one of 115 interviewers, and each rated respondents
    # in their own way: as a quantity (with spline bases) it says nothing a linear model can use
    from graphs.evaluate import Job, evaluate
    from graphs.runner import open_run

    rc = open_run(Path(__file__).parents[1] / "bench" / "tasks" / "political-information" / "task.yaml",
                  tmp_path / "out")
    columns = {c.name: c for c in rc.ctx.columns}
    assert columns["interviewer"].integer and columns["age"].integer and not columns["length"].integer
    draft = policy.write_initial(rc.ctx, cards_for(rc.ctx)["linear"])
    offered = [parse_plan(p)[1] for p in plans(policy, rc.ctx, draft, "preprocess")
               if "as_categories" in parse_plan(p)[1]]
    # the most distinct values first; 115 codes are more than one-hot keeps, so they come target-encoded
    assert offered == [{"as_categories": ["interviewer"], "encoding": "target"},
                       {"as_categories": ["age"], "encoding": "target"}]
    code = refined(policy, rc.ctx, draft, "preprocess",
                   plan_where(policy, rc.ctx, draft, "preprocess", lambda _, a: a.get("as_categories") == ["interviewer"]))
    assert "CODES = ['interviewer']" in code
    assert block_spec(info(code, "preprocess").source, "preprocess").as_categories == ["interviewer"]
    again = [parse_plan(p)[1] for p in plans(policy, rc.ctx, code, "preprocess")]
    assert {"as_categories": []} in again and {"as_categories": ["interviewer", "age"]} in again
    assert ops.apply_op(rc.ctx, "preprocess", PreprocessSpec(), "set_preprocess", {"as_categories": ["rating"]},
                        None) is None  # the target, or any non-numeric column, is no code

    before, after = evaluate(rc, [Job(draft, "draft", "linear", "default"),
                                  Job(code, "refine", "interviewer as a category", "")])
    print(f"\nlog loss: interviewer as a number {before['score']:.4f}, as a category {after['score']:.4f}")
    assert after["status"] == "ok" and after["score"] < before["score"] - 0.005
