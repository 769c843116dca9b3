"""Text competitions for the heuristic policy (issue #14): a text task's drafts start from TF-IDF n-grams, no plan
ever puts a model that cannot read a sparse matrix beside them, table columns stay in the model on a mixed task, and
a whole run on a task built from the docstrings of three standard-library packages beats the uniform guess.

The task has the shape of Kaggle's spooky-author-identification: ``id,text,library`` in train.csv, one probability
column per library in the sample submission, scored by log loss."""

from __future__ import annotations

import importlib
import inspect
import json
import math
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import log_loss

from ablation import splice
from core.cards import CardQuery
from core.checks import leakage_findings
from core.dataprep import prepare_data
from core.loading import load_with_plugins
from core.policy import AblationView
from core.submission import submission_problems
from pipeline_runs import core_run
from plugins.heuristic import make_heuristic_policy
from retrieval.catalogue import CatalogueBackend, catalogue
from space import families, ops, text
from space.ops import parse_plan
from space.render import specs_of
from test_heuristic import (
    Contract,
    assert_contract_kept,
    block,
    cards_for,
    info,
    refined,
    run_many,
    run_script,
)

LIBRARIES = ("email", "asyncio", "unittest")
UNIFORM = math.log(len(LIBRARIES))  # the log loss of 1/3 for every class: 1.0986
TEST_ROWS = 60
NO_ABLATION = AblationView()


# --- the task: first paragraphs of standard-library docstrings, labelled by package ---------------------------------

def docstrings(package: str) -> dict[str, str]:
    """The first paragraph of every function, class, method and property docstring in ``package`` and its modules
    (40-600 characters, the package's name taken out), each labelled with the package."""
    root = importlib.import_module(package)
    names = [package] + sorted(m.name for m in pkgutil.walk_packages(root.__path__, package + ".")
                               if "__main__" not in m.name and ".test" not in m.name)  # importing those runs tests
    found = []
    for name in names:
        try:
            module = importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a platform-specific module (asyncio.windows_events): not ours to read
            continue
        for _, item in inspect.getmembers(module, lambda o: inspect.isfunction(o) or inspect.isclass(o)):
            if not getattr(item, "__module__", "").startswith(package):
                continue
            found.append(item)
            if inspect.isclass(item):
                members = inspect.getmembers(item, lambda o: inspect.isfunction(o) or isinstance(o, property))
                found += [m for _, m in members if getattr(getattr(m, "fget", m), "__module__", "").startswith(package)]
    out = {}
    for item in found:
        first = re.sub(r"\s+", " ", (inspect.getdoc(item) or "").split("\n\n")[0]).strip()
        first = re.sub(package, "", first, flags=re.IGNORECASE).strip()
        if 40 <= len(first) <= 600:
            out[first] = package
    return out


def docstring_frame() -> pd.DataFrame:
    """``id, text, library``, shuffled; a text two packages share keeps the first package's label."""
    rows: dict[str, str] = {}
    for package in LIBRARIES:
        for doc, label in docstrings(package).items():
            rows.setdefault(doc, label)
    frame = pd.DataFrame({"text": list(rows), "library": list(rows.values())})
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    frame.insert(0, "id", np.arange(10_000, 10_000 + len(frame)))
    return frame


def write_competition(folder: Path, frame: pd.DataFrame, *, target: str = "library", budget: dict | None = None,
                      validation: dict | None = None, metric: str | None = None) -> Path:
    """An MLE-bench folder (train.csv, test.csv, sample_submission.csv, description.md, the answers under private/)
    with its task.yaml; returns the task.yaml's path. The library is predicted as one probability column per
    library (log loss); another target, a number, as itself (RMSE, unless ``metric`` says otherwise)."""
    folder.mkdir(parents=True)
    test, train = frame.iloc[:TEST_ROWS], frame.iloc[TEST_ROWS:]
    train.to_csv(folder / "train.csv", index=False)
    test.drop(columns=target).to_csv(folder / "test.csv", index=False)
    columns = {label: 1 / len(LIBRARIES) for label in LIBRARIES} if target == "library" else {target: 0.0}
    pd.DataFrame({"id": test["id"], **columns}).to_csv(folder / "sample_submission.csv", index=False)
    (folder / "private").mkdir()
    test[["id", target]].to_csv(folder / "private" / "answers.csv", index=False)
    (folder / "description.md").write_text(
        "# Which library?\n\nEach text is the first paragraph of a docstring from one of three Python standard-library "
        "packages. Predict the probability of each package for every text in test.csv; scored by multi-class log "
        "loss.\n" if target == "library" else f"# Docstrings\n\nPredict {target} from each docstring's text.\n")
    spec = {"name": folder.name, "goal_file": "description.md", "data": {"dir": "."},
            "metric": metric or ("logloss" if target == "library" else "rmse"),
            "output": str(folder.parent / f"{folder.name}-out"), "seed": 0}
    if budget:
        spec["budget"] = budget
    if validation:
        spec["validation"] = validation
    (folder / "task.yaml").write_text(yaml.safe_dump(spec))
    return folder / "task.yaml"


def prepared_contract(task_yaml: Path) -> Contract:
    """The task's search input folder as a contract folder (scored on every validation row: one split, no folds)."""
    task, registry = load_with_plugins(task_yaml)
    metric = registry.metrics[task.metric]
    data = prepare_data(task, maximize=metric.maximize, proba=metric.proba)
    root = task_yaml.parent.parent / f"{task_yaml.parent.name}-contract"
    root.mkdir()
    (root / "input").symlink_to(data.search_dir)
    return Contract(data.context, root, data.truth)


def with_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """The docstring task plus two numeric columns: one that tells the libraries apart (its mean differs by label),
    one of pure noise. Text plus several table columns: a mixed task."""
    rng = np.random.default_rng(1)
    codes = frame["library"].map({label: i for i, label in enumerate(LIBRARIES)}).to_numpy()
    out = frame.copy()
    out.insert(2, "signal", np.round(rng.normal(1.5 * codes, 1.0), 3))
    out.insert(3, "noise", np.round(rng.normal(0.0, 1.0, len(out)), 3))
    return out


def score_of(contract: Contract, code: str) -> float:
    run = run_script(contract, code)
    assert_contract_kept(contract, run)
    return run.score


def member_fits(contract: Contract, code: str) -> bool:
    specs = specs_of(code)
    return all(text.fits(contract.ctx, m, specs["preprocess"]) for m in specs["model"].members)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return docstring_frame()


@pytest.fixture(scope="module")
def docs(tmp_path_factory, frame) -> Contract:
    base = tmp_path_factory.mktemp("text-recipes")
    return prepared_contract(write_competition(base / "docs", frame, validation={"folds": 1, "selection": 0}))


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, frame) -> Contract:
    base = tmp_path_factory.mktemp("mixed-recipes")
    return prepared_contract(write_competition(base / "docs-mixed", with_numbers(frame),
                                               validation={"folds": 1, "selection": 0}))


@pytest.fixture(scope="module")
def policy():
    return make_heuristic_policy({})


@pytest.fixture(scope="module")
def drafts(docs, policy) -> dict[str, str]:
    """The first scripts of the text task for the text cards, a booster that reads TF-IDF and one that cannot."""
    cards = cards_for(docs.ctx)
    return {name: policy.write_initial(docs.ctx, cards[name])
            for name in ("linear", "multinomial_nb", "lightgbm", "hist_gradient_boosting")}


# --- the task and the catalogue -----------------------------------------------------------------------------------

def test_the_task_is_read_as_text_and_the_text_cards_come_first(docs, mixed):
    assert len(docs.ctx.columns) == 1 and docs.ctx.columns[0].dtype == "text" and docs.ctx.modality == "text"
    assert docs.ctx.output_kind() == "wide" and docs.ctx.prediction_columns == list(LIBRARIES)
    assert list(cards_for(docs.ctx))[:2] == ["linear", "multinomial_nb"]
    # naive Bayes needs the text alone: not offered beside table columns, nor for a table
    assert mixed.ctx.modality == "mixed" and list(cards_for(mixed.ctx))[0] == "linear"
    assert "multinomial_nb" not in cards_for(mixed.ctx)
    table = CatalogueBackend().search(CardQuery(task_type="classification", n_rows=400, n_features=10), 50)
    assert "multinomial_nb" not in [card.name for card in table]


# --- the draft ------------------------------------------------------------------------------------------------------

def test_the_draft_of_a_text_task_is_tfidf_without_leakage_and_beats_the_uniform_guess(docs, drafts):
    for name in ("linear", "multinomial_nb", "lightgbm"):
        code = drafts[name]
        assert specs_of(code)["preprocess"].text == "tfidf", name
        assert 'TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5)' in code
        assert "X_train = sparse.csr_matrix(preprocessor.fit_transform(X_train, y_train))" in code
        assert leakage_findings(code) == [], name
    linear = specs_of(drafts["linear"])["model"].members[0]
    assert linear.params["solver"] == "saga" and not linear.scale  # a scaler would centre the sparse matrix
    # boosted trees split on few n-grams: a small vocabulary and fewer rounds at a higher rate
    boosted = specs_of(drafts["lightgbm"])
    assert (boosted["preprocess"].tfidf_features, specs_of(drafts["linear"])["preprocess"].tfidf_features) == \
        (1_000, 20_000)
    rounds = boosted["model"].members[0].params
    assert rounds["n_estimators"] < 500 and rounds["learning_rate"] > 0.05, rounds
    # a model that needs dense input keeps today's hashed tokens
    assert specs_of(drafts["hist_gradient_boosting"])["preprocess"].text == "hash"
    runs = run_many([(docs, drafts[name]) for name in ("linear", "multinomial_nb")])
    for run in runs:
        assert_contract_kept(docs, run)
        assert run.score < 0.4 * UNIFORM, run.score
    print(f"draft log loss: linear {runs[0].score:.4f}, naive Bayes {runs[1].score:.4f}, uniform {UNIFORM:.4f}")


def test_a_task_declared_tabular_keeps_hashed_tokens_for_its_long_text(docs, policy):
    ctx = docs.ctx.model_copy(update={"modality": "tabular"})
    cards = cards_for(ctx)
    assert "multinomial_nb" not in cards
    assert specs_of(policy.write_initial(ctx, cards["linear"]))["preprocess"].text == "hash"
    naive_bayes = cards_for(docs.ctx)["multinomial_nb"]
    assert policy.write_initial(ctx, naive_bayes) is None  # without TF-IDF, naive Bayes has nothing it can read


# --- plans ----------------------------------------------------------------------------------------------------------

def test_no_plan_puts_a_model_that_cannot_read_sparse_input_beside_tfidf(docs, policy, drafts):
    ctx = docs.ctx
    dense_only = {f.path(ctx.task_type) for f in families.FAMILIES if not f.sparse_ok and f.path(ctx.task_type)}
    scripts = {}
    for name, code in drafts.items():
        for kind in ("preprocess", "model", "train"):
            for plan in policy.plan_refinement(ctx, code, info(code, kind), NO_ABLATION, [], 500):
                new = refined(policy, ctx, code, kind, plan)
                compile(new, f"{name}-{kind}", "exec")
                assert member_fits(docs, new), (name, plan)
                specs = specs_of(new)
                if text.sparse_features(ctx, specs["preprocess"]):
                    assert not {m.estimator for m in specs["model"].members} & dense_only, (name, plan)
                op, args = parse_plan(plan)
                scripts[(name, op, json.dumps(args, sort_keys=True))] = new
    # what the plans offered: other text modes and the TF-IDF knobs, members that read TF-IDF (naive Bayes only on
    # text alone), and nothing that would take TF-IDF from naive Bayes or give it to a dense-only model
    linear = {key[1:] for key in scripts if key[0] == "linear"}
    assert {("set_preprocess", '{"text": "hash"}'), ("set_preprocess", '{"tfidf_chars": false}'),
            ("set_preprocess", '{"tfidf_features": 40000}'),
            ("add_member", '{"estimator": "sklearn.naive_bayes.MultinomialNB"}'),
            ("add_member", '{"estimator": "lightgbm.LGBMClassifier"}')} <= linear
    assert not [key for key in scripts if key[1] in ("swap_model", "add_member") and key[0] != "hist_gradient_boosting"
                and any(path in key[2] for path in dense_only)]
    assert not [key for key in scripts if key[0] == "multinomial_nb" and '"text"' in key[2]]
    assert not [key for key in scripts if key[0] == "hist_gradient_boosting" and '"tfidf"' in key[2]]
    # asked directly (as an LLM's structured action would), the ops refuse such a script
    code = drafts["linear"]
    forest = '(op: add_member {"estimator": "sklearn.ensemble.RandomForestClassifier"})'
    swap = '(op: swap_model {"estimator": "sklearn.ensemble.HistGradientBoostingClassifier", "member": 0})'
    assert ops.implement(ctx, code, info(code, "model"), "Add a forest " + forest) is None
    assert ops.implement(ctx, code, info(code, "model"), "Swap to HGB " + swap) is None
    nb = drafts["multinomial_nb"]
    assert ops.implement(ctx, nb, info(nb, "preprocess"), 'Hash (op: set_preprocess {"text": "hash"})') is None
    hgb = drafts["hist_gradient_boosting"]
    assert ops.implement(ctx, hgb, info(hgb, "preprocess"), 'TF-IDF (op: set_preprocess {"text": "tfidf"})') is None

    # a few of them run: the text modes and knobs, blends, bagging and calibration on the sparse matrix, a booster's
    # early stopping on it (bagged), and a short Optuna study (its cross-validation takes rows of the sparse matrix)
    picks = [("linear", "set_preprocess", '{"text": "stats"}'), ("linear", "set_preprocess", '{"tfidf_chars": false}'),
             ("linear", "add_member", '{"estimator": "sklearn.naive_bayes.MultinomialNB"}'),
             ("linear", "set_train", '{"folds": 3}'), ("multinomial_nb", "set_train", '{"calibration": "auto"}'),
             ("lightgbm", "set_train", '{"folds": 3}')]  # drafted to stop early on log loss: each fold stops
    jobs = [(docs, scripts[key]) for key in picks]
    studied = ops.implement(ctx, code, info(code, "model"), 'Tune (op: tune {"member": 0, "seconds": 4.0})')
    jobs.append((docs, splice(code, block(code, "model"), studied)))
    for key, run in zip([*picks, "tune"], run_many(jobs)):
        assert_contract_kept(docs, run)
        assert run.score < UNIFORM, (key, run.score)


def test_merging_leaves_out_models_that_cannot_read_tfidf_and_blends_the_rest(docs, policy, drafts):
    ctx = docs.ctx
    assert policy.merge(ctx, drafts["linear"], drafts["hist_gradient_boosting"]) is None
    merged = policy.merge(ctx, drafts["linear"], drafts["multinomial_nb"])
    members = [m.estimator for m in specs_of(merged)["model"].members]
    assert members == ["sklearn.linear_model.LogisticRegression", "sklearn.naive_bayes.MultinomialNB"]
    blend, alone = score_of(docs, merged), score_of(docs, drafts["linear"])
    assert blend < UNIFORM
    print(f"merged linear + naive Bayes: {blend:.4f} (linear alone {alone:.4f})")


def test_the_simplified_preprocess_block_of_a_text_task_still_runs(docs, policy, drafts):
    jobs = []
    for name in ("multinomial_nb", "hist_gradient_boosting"):
        code = drafts[name]
        simpler = policy.simplify_block(docs.ctx, code, info(code, "preprocess"))
        assert simpler is not None and len(simpler) < len(info(code, "preprocess").source)
        jobs.append((docs, splice(code, block(code, "preprocess"), simpler)))
    kept = specs_of(jobs[0][1])["preprocess"]
    assert (kept.text, kept.tfidf_chars) == ("tfidf", False)  # naive Bayes reads TF-IDF or nothing
    assert specs_of(jobs[1][1])["preprocess"].text == "stats"  # the text is all there is: not dropped
    for run in run_many(jobs):
        assert_contract_kept(docs, run)


def test_a_text_regression_task_fits_tfidf_with_ridge_and_lightgbm(tmp_path, frame, policy):
    """Ridge's SAGA cannot fit an intercept on a sparse matrix: the classifier's TF-IDF settings stay its own."""
    rng = np.random.default_rng(2)
    scored = frame.assign(score=frame["library"].map({"email": 1.0, "asyncio": 3.0, "unittest": 5.0})
                          + rng.normal(0.0, 0.5, len(frame))).drop(columns="library")
    contract = prepared_contract(write_competition(tmp_path / "docs-score", scored, target="score",
                                                   validation={"folds": 1, "selection": 0}))
    cards = cards_for(contract.ctx)
    assert contract.ctx.modality == "text" and list(cards)[0] == "linear" and "multinomial_nb" not in cards
    codes = [policy.write_initial(contract.ctx, cards[name]) for name in ("linear", "lightgbm")]
    assert [specs_of(code)["preprocess"].text for code in codes] == ["tfidf", "tfidf"]
    assert "Ridge(max_iter=2000, random_state=SEED)" in codes[0]  # no solver="saga"
    spread = pd.read_csv(contract.truth)["score"].std()
    for run in run_many([(contract, code) for code in codes]):
        assert_contract_kept(contract, run)
        assert run.score < 0.7 * spread, (run.score, spread)


def test_a_two_class_text_task_fits_logistic_regression_by_lbfgs(tmp_path, frame, policy):
    """SAGA suits many classes; on two (and on each target of a multi-label task) L-BFGS is the fast solver."""
    email = frame.assign(is_email=(frame["library"] == "email").astype(int)).drop(columns="library")
    contract = prepared_contract(write_competition(tmp_path / "docs-email", email, target="is_email",
                                                   metric="roc_auc", validation={"folds": 1, "selection": 0}))
    assert contract.ctx.task_type == "classification" and len(contract.ctx.classes) == 2
    code = policy.write_initial(contract.ctx, cards_for(contract.ctx)["linear"])
    linear = specs_of(code)["model"].members[0]
    assert (linear.params["solver"], linear.params["C"]) == ("lbfgs", 4.0) and not linear.scale
    [run] = run_many([(contract, code)])
    assert_contract_kept(contract, run)
    assert run.score > 0.9, run.score  # ROC AUC of email docstrings against the other two libraries'


# --- a mixed task ---------------------------------------------------------------------------------------------------

def test_a_mixed_task_stacks_tfidf_with_its_numeric_columns(docs, mixed, policy):
    code = policy.write_initial(mixed.ctx, cards_for(mixed.ctx)["linear"])
    assert "NUMERIC = ['signal', 'noise']" in code and "TEXT = ['text']" in code
    assert 'parts.append(("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric))' \
        in code
    assert 'parts.append((f"text_{column}", text_vectoriser(), column))' in code
    assert leakage_findings(code) == []
    with_columns = score_of(mixed, code)
    text_alone = score_of(docs, policy.write_initial(docs.ctx, cards_for(docs.ctx)["linear"]))
    assert with_columns < text_alone - 0.02, (with_columns, text_alone)  # the informative column is in the model
    print(f"mixed task: {with_columns:.4f} with the numeric columns, {text_alone:.4f} from the text alone")


def test_a_categorical_column_beside_tfidf_keeps_one_column_per_category(tmp_path, frame, policy):
    """The one-hot cap of dense tables (20 codes per column) lumps the rest into one: beside TF-IDF the matrix is
    sparse anyway, so each of 39 shelves, each telling of one library, keeps its code."""
    # seeds 3-7 of these shelves: log loss 0.004, 0.055, 0.12, 0.053 and 0.052 lower with a code per shelf
    rng = np.random.default_rng(4)
    codes = frame["library"].map({label: i for i, label in enumerate(LIBRARIES)}).to_numpy()
    own = codes + 3 * rng.integers(0, 13, len(frame))  # a shelf of the row's own library (shelf % 3 == its code)
    shelf = np.where(rng.random(len(frame)) < 0.8, own, rng.integers(0, 39, len(frame)))
    shelved = frame.assign(shelf=[f"s{k}" for k in shelf])
    contract = prepared_contract(write_competition(tmp_path / "docs-shelves", shelved,
                                                   validation={"folds": 1, "selection": 0}))
    assert [c.dtype for c in contract.ctx.columns] == ["text", "categorical"]
    code = policy.write_initial(contract.ctx, cards_for(contract.ctx)["linear"])
    assert 'parts.append(("categorical", OneHotEncoder(handle_unknown="ignore"), categorical))' in code
    capped = code.replace('OneHotEncoder(handle_unknown="ignore")', 'OneHotEncoder(handle_unknown='
                          '"infrequent_if_exist", max_categories=20, sparse_output=False)')
    every, twenty = score_of(contract, code), score_of(contract, capped)
    assert every < twenty - 0.02, (every, twenty)  # log loss: the shelves past the twentieth still tell
    print(f"shelves: log loss {every:.4f} with a code per shelf, {twenty:.4f} with 20 codes")


# --- the whole run --------------------------------------------------------------------------------------------------

def test_the_text_card_example_is_a_tfidf_script_that_runs_on_a_spooky_shaped_folder(tmp_path, frame):
    # the catalogue's example for naive Bayes, shown to LLM policies: spooky-author's names (id, text, author; one
    # probability column per author), so the docstring task is renamed to them
    authors = dict(zip(LIBRARIES, ("EAP", "HPL", "MWS")))
    spooky = frame.rename(columns={"library": "author"}).assign(author=lambda f: f["author"].map(authors))
    test, valid, train = spooky.iloc[:TEST_ROWS], spooky.iloc[TEST_ROWS:3 * TEST_ROWS], spooky.iloc[3 * TEST_ROWS:]
    (tmp_path / "input").mkdir()
    for name, part in (("train", train), ("valid", valid), ("test", test.drop(columns="author"))):
        part.to_csv(tmp_path / "input" / f"{name}.csv", index=False)
    pd.DataFrame({"id": test["id"], **{a: 1 / 3 for a in authors.values()}}).to_csv(
        tmp_path / "input" / "sample_submission.csv", index=False)
    example = next(entry.card.example_code for entry in catalogue() if entry.card.name == "multinomial_nb")

    (tmp_path / "solution.py").write_text(example)
    done = subprocess.run([sys.executable, "solution.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stderr[-2000:]
    assert "TfidfVectorizer(" in example and "OneHotEncoder(handle_unknown" not in example.split("# [block: model]")[1]
    submission = pd.read_csv(tmp_path / "submission.csv")
    assert list(submission.columns) == ["id", "EAP", "HPL", "MWS"] and len(submission) == TEST_ROWS
    predicted = pd.read_csv(tmp_path / "val_predictions.csv")
    assert log_loss(valid["author"], predicted[["EAP", "HPL", "MWS"]], labels=["EAP", "HPL", "MWS"]) < 0.8 * UNIFORM


@pytest.mark.slow
def test_the_heuristic_pipeline_on_the_text_task_submits_better_than_uniform(tmp_path, frame):
    task = write_competition(tmp_path / "docs", frame, budget={
        "total_seconds": 60, "run_timeout": 30, "models": 3, "plans": 2, "outer_steps": 1, "ensemble_rounds": 1,
        "debug_retries": 1})
    spec = yaml.safe_load(task.read_text())
    spec["executor"] = {"name": "local", "options": {"workers": 2}}
    spec["strategy"] = {"anytime": False}  # MLE-STAR's first pass is the recipe under test, not the search after it
    task.write_text(yaml.safe_dump(spec))
    done = core_run(str(task))
    assert done.returncode == 0, done.stderr[-3000:]
    out = Path(spec["output"])
    result = json.loads((out / "result.json").read_text())
    assert [d["label"] for d in result["drafts"]][:2] == ["linear", "multinomial_nb"]
    assert not submission_problems(out / "submission.csv", task.parent / "sample_submission.csv", "id")
    submission = pd.read_csv(out / "submission.csv")
    answers = pd.read_csv(task.parent / "private" / "answers.csv").merge(submission, on="id")
    labels = sorted(LIBRARIES)  # log_loss reads the probability columns in the labels' sorted order
    loss = log_loss(answers["library"], answers[labels].to_numpy(), labels=labels)
    assert loss < 0.5 * UNIFORM, loss
    print(f"pipeline: test log loss {loss:.4f} (uniform {UNIFORM:.4f}); search scores {result['scores']}; "
          f"{result['wall_seconds']} s")
