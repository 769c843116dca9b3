"""Image recipes (issue #14): on bench/tasks/digits-images (32x32 colour digits at random places and colours) the
heuristic's image drafts run for real through the local executor, score as the framework scores them and beat chance
(pixels + LightGBM) and LightGBM (the small CNN) on the private test answers; the CNN keeps to its time slice; the
image step leaks nothing and counts as reading the image folders; its ops and the ablation's simplified blocks run;
the image cards' example scripts keep the contract; a small mixed task (table columns beside images, a regression
target) drafts both recipes. The figures are printed (pytest -s shows them)."""

from __future__ import annotations

import ast
import io
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from sklearn.datasets import load_digits

from ablation import ablation_variants, split_blocks
from core.checks import leakage_findings, unused_files
from core.dataprep import PreparedData, prepare_data
from core.executor import ExecutorOptions, RunRequest, RunResult
from core.loading import load_with_plugins
from core.local_executor import LocalExecutor
from core.policy import AblationView, BlockInfo, ImageInfo, TaskContext
from core.scoring import score_predictions
from core.submission import submission_problems
from plugins.heuristic import make_heuristic_policy
from retrieval.catalogue import CatalogueBackend
from space import images, ops
from space.draft import initial_spec
from space.render import block_spec, render_script, specs_of
from space.specs import ImageSpec, ModelSpec
from test_heuristic import info, refined

pytest.importorskip("torch")
pytest.importorskip("lightgbm")

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "bench" / "tasks" / "digits-images"
FIT_LINE = re.compile(r"ImageCNN\w+: (\d+) epochs in ([\d.]+) s \(slice ([\d.]+) s\)")
SLOW_MACHINE = 3.0  # the CI machine runs benchmarks beside the tests: wall-time bounds carry this much slack


# --- the task, prepared as the pipeline prepares it ------------------------------------------------------------------

@dataclass
class Prepared:
    ctx: TaskContext
    data: PreparedData
    metric: object
    answers: pd.DataFrame  # the private test labels (the grader's)


def prepare(tmp: Path, **validation) -> Prepared:
    """digits-images loaded through the plugins and prepared (its output in ``tmp``), validation as given."""
    spec = yaml.safe_load((DIGITS / "task.yaml").read_text())
    spec["data"] = {**spec["data"], "dir": str(DIGITS)}
    spec["validation"] = validation
    (tmp / "task.yaml").write_text(yaml.safe_dump(spec))
    task, registry = load_with_plugins(tmp / "task.yaml", tmp / "out")
    metric = registry.metrics[task.metric]
    data = prepare_data(task, metric.maximize, metric.proba)
    return Prepared(data.context, data, metric, pd.read_csv(DIGITS / "private" / "answers.csv"))


@pytest.fixture(scope="module")
def holdout(tmp_path_factory) -> Prepared:
    """One held-out validation split (validation.folds 1, no selection rows): the search folder's valid.csv holds
    exactly the truth's rows, so a script's printed score is the framework's."""
    return prepare(tmp_path_factory.mktemp("holdout"), folds=1, selection=0)


@pytest.fixture(scope="module")
def kfold(tmp_path_factory) -> Prepared:
    """The default preparation: the search cross-validates three folds in one process, as a run does."""
    return prepare(tmp_path_factory.mktemp("kfold"))


@pytest.fixture(scope="module")
def executor(tmp_path_factory) -> LocalExecutor:
    # two workers on this machine's two cores: one thread per script, as in a run (two threads per script crawl
    # when other processes hold the cores)
    return LocalExecutor(ExecutorOptions(workers=2, cache=False), out_dir=tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def policy():
    return make_heuristic_policy({})


def cards(ctx: TaskContext) -> dict:
    return {card.name: card for card in CatalogueBackend().search(ctx.card_query(), 50)}


def draft(ctx: TaskContext, card: str, **params) -> str:
    """The heuristic's first script for a catalogue card, its first member's params changed by ``params``."""
    spec = initial_spec(ctx, cards(ctx)[card])
    if params:
        member = spec.model.members[0]
        spec = spec.model_copy(update={"model": ModelSpec(members=[
            member.model_copy(update={"params": {**member.params, **params}})])})
    return render_script(ctx, spec)


def run(executor: LocalExecutor, code: str, folder: Path, timeout: float = 600) -> tuple[RunResult, float]:
    began = time.monotonic()
    result = executor.run(RunRequest(code=code, input_dir=folder, timeout=timeout, id_column="id"))
    assert result.ok, f"{result.status}: {result.message}\n{result.stderr_tail[-3000:]}"
    return result, time.monotonic() - began


def accuracy_on_test(prepared: Prepared, result: RunResult) -> float:
    """The share of test images the run's submission labels as the private answers do."""
    sub = pd.read_csv(result.workdir / "submission.csv").merge(prepared.answers, on="id", suffixes=("", "_true"))
    assert len(sub) == len(prepared.answers)
    return float((sub["label"] == sub["label_true"]).mean())


def kept_contract(prepared: Prepared, result: RunResult, folder: Path) -> float:
    """The run wrote a submission in the sample's format and validation predictions the framework scores; returns
    that score."""
    assert submission_problems(result.workdir / "submission.csv", folder / "sample_submission.csv", "id") == []
    score, problem = score_predictions(result.workdir / "val_predictions.csv", prepared.data.truth, prepared.ctx,
                                       prepared.metric)
    assert score is not None, problem
    return score


# --- drafts ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def drafts(holdout, executor) -> dict[str, dict]:
    """The CNN and pixels + LightGBM drafts run on the search folder and on every labelled row, one at a time."""
    out = {}
    for card in ("image_cnn", "lightgbm_pixels"):
        code = draft(holdout.ctx, card)
        search, search_wall = run(executor, code, holdout.data.search_dir)
        full, full_wall = run(executor, code, holdout.data.full_dir)
        out[card] = {"code": code, "search": search, "full": full, "search_wall": search_wall,
                     "full_wall": full_wall, "test": accuracy_on_test(holdout, full)}
        print(f"\n{card}: validation {search.reported_score:.4f} on {holdout.ctx.n_train} training rows in "
              f"{search_wall:.1f} s; all {holdout.ctx.n_train + holdout.ctx.n_valid} rows in {full_wall:.1f} s, "
              f"test accuracy {out[card]['test']:.4f}")
    return out


def test_the_catalogue_ranks_the_cnn_and_pixels_with_lightgbm_first_for_images(holdout):
    ranked = CatalogueBackend().search(holdout.ctx.card_query(), 4)
    assert [c.name for c in ranked[:2]] == ["image_cnn", "lightgbm_pixels"]
    assert "lightgbm" not in [c.name for c in CatalogueBackend().search(holdout.ctx.card_query(), 50)]  # its twin
    tabular = holdout.ctx.model_copy(update={"modality": "tabular", "images": None})
    names = [c.name for c in CatalogueBackend().search(tabular.card_query(), 50)]
    assert "image_cnn" not in names and "lightgbm_pixels" not in names and "lightgbm" in names


def test_an_image_draft_renders_the_image_step_and_prints_the_frameworks_score(holdout, drafts):
    for card, default in (("image_cnn", ImageSpec(side=32, colour="rgb")),
                          ("lightgbm_pixels", ImageSpec(side=16, colour="contrast", histogram_bins=8))):
        code = drafts[card]["code"]
        assert specs_of(code)["preprocess"].images == default
        assert "image_features(train, IMAGE_FOLDERS[\"train\"])" in code and '"test": "./input/test"' in code
        search = drafts[card]["search"]
        score = kept_contract(holdout, search, holdout.data.search_dir)
        assert search.reported_score == pytest.approx(score, abs=1e-6)
        assert submission_problems(drafts[card]["full"].workdir / "submission.csv",
                                   holdout.data.full_dir / "sample_submission.csv", "id") == []


def test_pixels_with_lightgbm_beat_chance_and_the_cnn_beats_them(drafts):
    lightgbm, cnn = drafts["lightgbm_pixels"], drafts["image_cnn"]
    assert lightgbm["test"] > 0.4 and lightgbm["search"].reported_score > 0.4  # ten digits: chance is 0.1
    assert cnn["test"] > lightgbm["test"] + 0.05
    assert cnn["search"].reported_score > lightgbm["search"].reported_score


def test_the_cnn_keeps_to_its_time_slice(holdout, kfold, executor):
    code = draft(holdout.ctx, "image_cnn", seconds=6.0, epochs=500, patience=500)  # only the clock stops it
    result, wall = run(executor, code, holdout.data.search_dir)
    [(epochs, seconds, slice_)] = FIT_LINE.findall(result.stdout_tail)
    assert float(slice_) == 6.0 and float(seconds) <= 6.0 + 1.0 and int(epochs) < 500
    assert wall < 6.0 + 20 * SLOW_MACHINE  # plus reading 1,800 images and importing torch
    # three folds in one process share the slice, and the final run gets what one fold got
    result, wall = run(executor, draft(kfold.ctx, "image_cnn", seconds=6.0, epochs=500, patience=500),
                       kfold.data.search_dir)
    fits = FIT_LINE.findall((result.workdir / "stdout.txt").read_text())
    assert [float(s) for _, _, s in fits] == [2.0, 2.0, 2.0] and all(float(t) <= 3.0 for _, t, _ in fits)
    assert wall < 6.0 + 30 * SLOW_MACHINE
    result, wall = run(executor, draft(kfold.ctx, "image_cnn", seconds=6.0, epochs=500, patience=500),
                       kfold.data.full_dir)
    [(_, seconds, slice_)] = FIT_LINE.findall(result.stdout_tail)
    assert float(slice_) == 2.0 and float(seconds) <= 3.0
    assert wall < 2.0 + 20 * SLOW_MACHINE


def test_image_scripts_have_no_leakage_findings_and_read_the_image_folders(holdout, policy):
    ctx = holdout.ctx
    for card in cards(ctx).values():
        code = policy.write_initial(ctx, card)
        assert leakage_findings(code) == [], card.name
        assert not {"train", "test"} & set(unused_files(code, ctx.files)), card.name
    # a folder named otherwise: the check reads the image step's paths, and flags a script without the step
    elsewhere = ctx.model_copy(update={"images": ImageInfo(column="id", suffix=".png", train_folder="images",
                                                           test_folder="images"), "files": [*ctx.files, "images"]})
    with_step = draft(elsewhere, "lightgbm_pixels")
    assert "images" not in unused_files(with_step, elsewhere.files) and leakage_findings(with_step) == []
    without = render_script(elsewhere, initial_spec(elsewhere.model_copy(update={"images": None}),
                                                    cards(elsewhere)["random_forest"]))
    assert "images" in unused_files(without, elsewhere.files)


# --- refinement and ablation -------------------------------------------------------------------------------------

def plans_for(policy, ctx: TaskContext, code: str, kind: str) -> list[str]:
    return policy.plan_refinement(ctx, code, info(code, kind), AblationView(), [], 500)


def test_the_image_ops_render_and_compile(holdout, policy):
    ctx = holdout.ctx
    for card in ("image_cnn", "lightgbm_pixels"):
        code = draft(ctx, card)
        offered = {kind: plans_for(policy, ctx, code, kind) for kind in ("preprocess", "model", "train")}
        fields = {field for plan in offered["preprocess"] for name, args in [ops.parse_plan(plan)]
                  if name == "set_images" for field in args}
        expected = {"side", "colour", "standardise"} | ({"histogram_bins"} if card == "lightgbm_pixels" else set())
        assert fields == expected, card
        moves = {ops.parse_plan(plan)[1].get("move") for plan in offered["model"]}
        if card == "image_cnn":
            assert {"longer_training", "wider", "narrower", "lower_rate", "higher_rate", "more_regularisation"} <= moves
        else:
            assert any(ops.parse_plan(p)[1].get("estimator") == images.CNN_CLASSIFIER for p in offered["model"])
        for kind, plans in offered.items():
            for plan in plans:
                new = refined(policy, ctx, code, kind, plan)
                ast.parse(new)  # compiles
                assert block_spec(info(new, kind).source, kind) != block_spec(info(code, kind).source, kind), plan
                assert leakage_findings(new) == [], plan


def test_image_ops_run(holdout, policy, executor):
    ctx = holdout.ctx
    lightgbm = draft(ctx, "lightgbm_pixels")
    grey = refined(policy, ctx, lightgbm, "preprocess",
                   next(p for p in plans_for(policy, ctx, lightgbm, "preprocess") if '"colour": "grey"' in p))
    smaller = refined(policy, ctx, grey, "preprocess",
                      next(p for p in plans_for(policy, ctx, grey, "preprocess") if '"side": 12' in p))
    assert specs_of(smaller)["preprocess"].images == ImageSpec(side=12, colour="grey", histogram_bins=8)
    cnn = draft(ctx, "image_cnn", seconds=10.0)
    narrower = next(p for p in plans_for(policy, ctx, cnn, "model") if '"move": "narrower"' in p)
    cnn = refined(policy, ctx, cnn, "model", narrower)
    assert specs_of(cnn)["model"].members[0].params["width"] == 8
    for code in (smaller, cnn):
        result, _ = run(executor, code, holdout.data.search_dir)
        assert kept_contract(holdout, result, holdout.data.search_dir) > 0.3


def test_the_simplified_blocks_of_an_image_draft_still_run(holdout, policy, executor):
    ctx = holdout.ctx
    code = draft(ctx, "image_cnn", seconds=8.0)

    def simplify(block):
        return policy.simplify_block(ctx, code, BlockInfo(key=block.key, kind=block.kind, source=block.source))

    variants, _ = ablation_variants(code, split_blocks(code), simplify=simplify)
    preprocess = next(v for v in variants if v.kind == "preprocess")
    assert preprocess.action == "simplify"
    assert specs_of(preprocess.code)["preprocess"].images == ImageSpec(side=32, colour="grey")  # still features
    for variant in variants:
        result, _ = run(executor, variant.code, holdout.data.search_dir)
        assert kept_contract(holdout, result, holdout.data.search_dir) > 0.2, variant.description


# --- the cards' examples and a small mixed task ------------------------------------------------------------------

def png(digit: np.ndarray, background: np.ndarray) -> bytes:
    """An 8x8 digit enlarged to 16x16 in the contrasting colour on the background's."""
    shape = np.kron(digit / 16.0, np.ones((2, 2)))[..., None]
    pixels = (background * (1 - shape) + (255 - background) * shape).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


TARGETS = {"label": "classification", "shade": "regression"}  # the digit; the background's brightness (0-1)


@pytest.fixture(scope="module")
def small_images(tmp_path_factory) -> Path:
    """A folder per target (``TARGETS``), each a working folder: ./input/{train,valid,test,sample_submission}.csv
    (id, the target, two table columns: noise and an ink count) and ./input/images/<id>.png for every row (one
    folder for training and test images); the valid rows' truth beside ./input."""
    root = tmp_path_factory.mktemp("small-images")
    (root / "images").mkdir()
    digits = load_digits()
    rng = np.random.default_rng(0)
    rows = []
    for k in range(400):
        background = rng.integers(0, 256, 3)
        (root / "images" / f"s{k:04d}.png").write_bytes(png(digits.images[k], background))
        rows.append({"id": f"s{k:04d}", "label": int(digits.target[k]), "shade": float(background.mean() / 255),
                     "weight": float(rng.normal()), "ink": float(digits.images[k].sum() / 16 + rng.normal())})
    frame = pd.DataFrame(rows)
    for target in TARGETS:
        folder = root / target / "input"
        folder.mkdir(parents=True)
        (folder / "images").symlink_to(root / "images")
        table = frame.drop(columns=[t for t in TARGETS if t != target])
        table.iloc[:260].to_csv(folder / "train.csv", index=False)
        table.iloc[260:330].to_csv(folder / "valid.csv", index=False)
        table.iloc[330:].drop(columns=target).to_csv(folder / "test.csv", index=False)
        table.iloc[330:][["id", target]].assign(**{target: 0}).to_csv(folder / "sample_submission.csv", index=False)
        table.iloc[260:330][["id", target]].to_csv(folder.parent / "valid_truth.csv", index=False)
    return root


def small_ctx(root: Path, target: str) -> TaskContext:
    """What the data layer says of a small folder: a mixed task (two table columns beside the images)."""
    from core.dataprep import _column_info  # the data layer's own column description

    train = pd.read_csv(root / target / "input" / "train.csv")
    classification = TARGETS[target] == "classification"
    return TaskContext(
        name=f"small-images-{target}", goal="Digits on coloured cards.", task_type=TARGETS[target],
        metric="accuracy" if classification else "rmse", maximize=classification, proba=False, target=target,
        id_column="id", prediction_columns=[target],
        classes=[str(c) for c in sorted(train[target].unique())] if classification else [],
        columns=[_column_info(train[c]) for c in ("weight", "ink")], n_train=len(train), n_valid=70, n_test=70,
        files=sorted(p.name for p in (root / target / "input").iterdir()), modality="mixed",
        images=ImageInfo(column="id", suffix=".png", train_folder="images", test_folder="images"))


@pytest.mark.parametrize("card", ["image_cnn", "lightgbm_pixels"])
def test_the_image_cards_examples_keep_the_contract(card, small_images, tmp_path):
    example = cards(small_ctx(small_images, "label"))[card].example_code
    example = example.replace('"./input/train"', '"./input/images"').replace('"./input/test"', '"./input/images"')
    for target, task in TARGETS.items():
        work = tmp_path / target
        work.mkdir()
        (work / "input").symlink_to(small_images / target / "input")
        (work / "solution.py").write_text(example.replace('ID, TARGET = "id", "label"', f'ID, TARGET = "id", {target!r}'))
        done = subprocess.run([sys.executable, "solution.py"], cwd=work, capture_output=True, text=True, timeout=300,
                              env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        score = float(re.findall(r"Final Validation Performance: (\S+)", done.stdout)[-1])
        assert submission_problems(work / "submission.csv", work / "input" / "sample_submission.csv", "id") == []
        assert list(pd.read_csv(work / "val_predictions.csv").columns) == ["id", target]
        if task == "classification":
            assert score > 0.3, f"{card}: accuracy {score} on ten digits"
        else:  # the background's brightness: nearly exact
            assert score < 0.5 * pd.read_csv(work / "input" / "valid.csv")[target].std(), f"{card}: RMSE {score}"


@pytest.mark.parametrize("target", TARGETS)
def test_a_mixed_task_keeps_its_table_columns_beside_the_images(target, small_images, policy, executor, registry):
    ctx = small_ctx(small_images, target)
    offered = cards(ctx)
    assert {"image_cnn", "lightgbm_pixels"} <= set(offered)
    truth = small_images / target / "valid_truth.csv"
    for card in ("image_cnn", "lightgbm_pixels"):
        code = policy.write_initial(ctx, offered[card])
        assert "NUMERIC = ['weight', 'ink']" in code and specs_of(code)["preprocess"].images is not None
        assert leakage_findings(code) == [] and "images" not in unused_files(code, ctx.files)
        result, _ = run(executor, code.replace("seconds=30.0", "seconds=8.0"), small_images / target / "input")
        score, problem = score_predictions(result.workdir / "val_predictions.csv", truth, ctx,
                                           registry.metrics[ctx.metric])
        assert score is not None, problem
        assert result.reported_score == pytest.approx(score, abs=1e-6)
        spread = pd.read_csv(truth)[target].std()
        assert score > 0.3 if target == "label" else score < 0.5 * spread, f"{card}: {ctx.metric} {score}"


# --- the whole agent -----------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_the_heuristic_pipeline_solves_digits_images_far_above_chance(tmp_path):
    spec = yaml.safe_load((DIGITS / "task.yaml").read_text())
    spec["data"] = {**spec["data"], "dir": str(DIGITS)}
    spec["budget"] = {**spec["budget"], "total_seconds": 90, "models": 2, "plans": 2, "outer_steps": 1,
                      "ensemble_rounds": 1}
    spec["output"] = str(tmp_path / "out")
    spec["executor"] = {"name": "local", "options": {"workers": 2}}
    spec["strategy"] = {"anytime": False}
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(spec))
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "core.run", str(tmp_path / "task.yaml")], capture_output=True,
                          text=True, cwd=ROOT, timeout=900, check=False)
    seconds = time.monotonic() - began
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "out"
    result = json.loads((out / "result.json").read_text())
    assert [d["label"] for d in result["drafts"]][:1] == ["image_cnn"]
    assert submission_problems(out / "submission.csv", DIGITS / "sample_submission.csv", "id") == []
    sub = pd.read_csv(out / "submission.csv").merge(pd.read_csv(DIGITS / "private" / "answers.csv"), on="id",
                                                    suffixes=("", "_true"))
    accuracy = float((sub["label"] == sub["label_true"]).mean())
    print(f"\npipeline: final {result['scores']['final']}, test accuracy {accuracy:.4f} in {seconds:.0f} s")
    assert accuracy > 0.6  # ten digits: chance is 0.1
    assert seconds < 90 * SLOW_MACHINE


def test_large_images_are_read_by_one_thread_per_core_into_the_same_columns(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    for i in range(6):  # photo-sized JPEGs (~60 KB): the threaded reader's case
        Image.fromarray((rng.random((300, 400, 3)) * 255).astype("uint8")).save(tmp_path / f"{i}.jpg", quality=90)
    frame = pd.DataFrame({"id": [0, 1, 2, 99, 3, 4, 5]})  # 99: no such image
    spec = images.draft_spec(images._EXAMPLE_CONTEXT, "")
    code = "\n".join(["import os", "from concurrent.futures import ThreadPoolExecutor", "import numpy as np",
                      "import pandas as pd", "from PIL import Image",
                      *images._functions(images._EXAMPLE_CONTEXT, spec, "id", ".jpg")])
    step: dict = {}
    exec(code, step)  # the image step's functions as a script defines them

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    one = step["image_features"](frame, str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    two = step["image_features"](frame, str(tmp_path))

    pd.testing.assert_frame_equal(one, two)
    assert one.iloc[3].isna().all() and one.drop(index=3).notna().all().all()
