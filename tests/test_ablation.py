"""The ablation package on real solution scripts: splitting into blocks, splicing a block back, ablation variants
that really run, progress lines that show how far a failing script got, and the summary that picks the block to
refine. The scripts in tests/fixtures/scripts/ run against a competition folder built from scikit-learn's breast
cancer data (offline)."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from ablation import (
    KINDS,
    AblationRow,
    AblationSummary,
    SpliceError,
    Variant,
    ablation_variants,
    effect_of,
    instrument,
    pick_target,
    reached_stages,
    splice,
    split_blocks,
    summarize,
)

SCRIPTS = Path(__file__).parent / "fixtures" / "scripts"
FIXTURES = ("marked", "unmarked", "main_guard", "helpers_main", "lgbm")
SCORE = re.compile(r"Final Validation Performance:\s*([-+0-9.eE]+|nan)")

# Replacement code handed to ablation_variants for blocks that cannot simply be removed.
SIMPLER = {
    "marked": {"model#0": "model = RandomForestClassifier(n_estimators=10, max_depth=2, random_state=0)"},
    "helpers_main": {"preprocess#1": 'features = [c for c in train.columns if c not in ("id", TARGET)]'},
}
VARIANTS = {  # (block, action) each script's ablation yields with the SIMPLER replacements
    "marked": [("preprocess#0", "remove"), ("preprocess#2", "remove"), ("model#0", "simplify")],
    "main_guard": [("preprocess#0", "remove")],
    "lgbm": [("preprocess#1", "remove")],
    "helpers_main": [("preprocess#1", "simplify")],
}


def script(name: str) -> str:
    return (SCRIPTS / f"{name}.py").read_text()


def code_lines(code: str) -> list[str]:
    return code.split("\n")


# --- running scripts for real ----------------------------------------------------------------------------------


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    folder: Path

    @property
    def score(self) -> float | None:
        found = SCORE.search(self.stdout)
        return float(found.group(1)) if found else None


def run_scripts(codes: list[str], input_dir: Path) -> list[Run]:
    """Run each script in a fresh folder holding ./input, two at a time, the way the executor would."""

    def run(code: str) -> Run:
        folder = Path(tempfile.mkdtemp(dir=input_dir.parent, prefix="run-"))
        (folder / "input").symlink_to(input_dir)
        (folder / "solution.py").write_text(code)
        env = {**os.environ, "OMP_NUM_THREADS": "1"}  # boosting libraries would otherwise fight over the cores
        done = subprocess.run([sys.executable, "solution.py"], cwd=folder, check=False, capture_output=True,
                              text=True, timeout=300, env=env)
        return Run(done.returncode, done.stdout, done.stderr, folder)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(run, codes))


@pytest.fixture(scope="module")
def input_dir(tmp_path_factory) -> Path:
    """./input with train/valid/test/sample_submission CSVs from the breast cancer data (id, 30 features, target)."""
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame.insert(0, "id", range(len(frame)))
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    train, valid, test = frame.iloc[:341], frame.iloc[341:455], frame.iloc[455:]
    folder = tmp_path_factory.mktemp("task") / "input"
    folder.mkdir()
    train.to_csv(folder / "train.csv", index=False)
    valid.to_csv(folder / "valid.csv", index=False)
    test.drop(columns="target").to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"id": test["id"], "target": 0.0}).to_csv(folder / "sample_submission.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def base_runs(input_dir) -> dict[str, Run]:
    """Each fixture script run once; unmarked.py is marked.py without its marker lines, so it is not run again."""
    names = [name for name in FIXTURES if name != "unmarked"]
    return dict(zip(names, run_scripts([script(name) for name in names], input_dir)))


@pytest.fixture(scope="module")
def variant_runs(input_dir) -> dict[str, list[tuple[Variant, Run]]]:
    """Every variant of every script that has some, run for real."""
    variants = {}
    for name in VARIANTS:
        simpler = SIMPLER.get(name, {})
        variants[name], _ = ablation_variants(script(name), simplify=lambda block, s=simpler: s.get(block.key))
    flat = [(name, v) for name, vs in variants.items() for v in vs]
    runs = run_scripts([v.code for _, v in flat], input_dir)
    out: dict[str, list[tuple[Variant, Run]]] = {name: [] for name in variants}
    for (name, variant), run in zip(flat, runs):
        out[name].append((variant, run))
    return out


def test_every_fixture_script_runs_and_writes_predictions(base_runs):
    for name, run in base_runs.items():
        assert run.returncode == 0, f"{name}:\n{run.stderr}"
        assert run.score is not None, name
        assert (run.folder / "submission.csv").is_file() and (run.folder / "val_predictions.csv").is_file()


# --- split_blocks ----------------------------------------------------------------------------------------------


def test_markers_start_blocks_of_their_kind():
    blocks = split_blocks(script("marked"))
    assert [b.key for b in blocks] == [
        "imports#0", "load_data#0", "preprocess#0", "preprocess#1", "preprocess#2", "model#0", "train#0", "predict#0",
    ]
    for block in blocks:
        assert block.source.startswith(f"# [block: {block.kind}]")
        assert block.indent == ""
    assert blocks[5].source == (
        "# [block: model]\n"
        "model = RandomForestClassifier(n_estimators=100, min_samples_leaf=2, random_state=0, n_jobs=1)"
    )


def test_unmarked_script_gets_the_same_stages_by_inference():
    assert script("unmarked") == "".join(
        line for line in script("marked").splitlines(keepends=True) if not line.startswith("# [block:")
    )
    marked = [b.kind for b in split_blocks(script("marked"))]
    stages = [k for i, k in enumerate(marked) if i == 0 or marked[i - 1] != k]  # consecutive kinds merge
    assert [b.kind for b in split_blocks(script("unmarked"))] == stages


def test_lightgbm_script_is_classified_by_what_each_statement_does():
    blocks = split_blocks(script("lgbm"))
    assert [(b.key, b.start, b.end) for b in blocks] == [
        ("imports#0", 1, 3),
        ("load_data#0", 5, 8),  # the sample submission is read with the data, before any model exists
        ("preprocess#0", 10, 10),
        ("other#0", 12, 12),
        ("model#0", 13, 13),
        ("preprocess#1", 15, 18),  # the comment above the clipping belongs to its block
        ("train#0", 20, 23),
        ("predict#0", 25, 27),
    ]
    assert blocks[5].defines == {"low", "high", "df"}
    assert {"train", "valid", "test", "features"} <= blocks[5].uses


def test_work_under_the_main_guard_is_split_into_indented_blocks():
    code = script("main_guard")
    blocks = split_blocks(code)
    assert [b.key for b in blocks] == [
        "imports#0", "other#0", "load_data#0", "preprocess#0", "preprocess#1", "model#0", "train#0", "predict#0",
    ]
    assert blocks[0].source.startswith('"""Logistic regression')  # the module docstring joins the imports
    assert [b.indent for b in blocks] == ["", ""] + ["    "] * 6
    guard = code_lines(code).index('if __name__ == "__main__":') + 1
    assert not any(b.start <= guard <= b.end for b in blocks)


def test_main_function_is_descended_into_and_helpers_take_the_kind_of_their_body():
    code = script("helpers_main")
    blocks = split_blocks(code)
    assert [b.key for b in blocks] == [
        "imports#0", "other#0", "load_data#0", "preprocess#0", "model#0", "train#0",
        "load_data#1", "preprocess#1", "model#1", "train#1", "predict#0",
    ]
    helpers = {b.key: b.source.split("\n")[0] for b in blocks[2:6]}
    assert helpers == {
        "load_data#0": "def load_data():",
        "preprocess#0": "def add_features(df):",
        "model#0": "def build_model():",
        "train#0": "def evaluate(model, X, y):",
    }
    assert all(b.indent == "    " for b in blocks[6:])
    assert blocks[7].source == (
        "    train, valid, test = add_features(train), add_features(valid), add_features(test)\n"
        '    features = [c for c in train.columns if c not in ("id", TARGET)]'
    )


# the lines that belong to no block: the entry point's header and the statement that calls it
ENTRY_LINES = {
    "marked": [],
    "unmarked": [],
    "lgbm": [],
    "main_guard": ['if __name__ == "__main__":'],
    "helpers_main": ["def main():", 'if __name__ == "__main__":', "    main()"],
}


@pytest.mark.parametrize("name", FIXTURES)
def test_blocks_are_exact_ordered_line_spans_covering_every_statement(name):
    code = script(name)
    lines = code_lines(code)
    blocks = split_blocks(code)
    assert [b.index for b in blocks] == list(range(len(blocks)))
    assert all(b.kind in KINDS for b in blocks)
    for before, after in pairwise(blocks):
        assert before.end < after.start
    for block in blocks:
        assert block.source == "\n".join(lines[block.start - 1 : block.end])
    covered = {n for b in blocks for n in range(b.start, b.end + 1)}
    uncovered = [line for n, line in enumerate(lines, 1) if n not in covered and line.strip()]
    assert uncovered == ENTRY_LINES[name]


def test_keys_count_blocks_per_kind_so_they_survive_a_rewrite_that_moves_lines():
    code = script("marked")
    before = split_blocks(code)
    longer = splice(code, before[2], before[2].source + "\n    df['extra'] = df['mean_area'] * 2\n\n\n")
    after = split_blocks(longer)
    assert [b.key for b in after] == [b.key for b in before]
    assert after[5].start == before[5].start + 1


ODD_SCRIPTS = {
    "empty": "",
    "only comments": "# nothing here\n\n# at all\n",
    "docstring only": '"""Just a docstring."""\n',
    "semicolons": "import os; x = 1\ny = x + 1; print(y)\n",
    "decorated": "import functools\n\n\n@functools.lru_cache\n# odd comment\n@staticmethod\ndef f():\n    return 1\n",
    "one-line guard": 'def main(): print("hi")\nif __name__ == "__main__": main()\n',
    "guard calling main": (
        'import sys\n\ndef main():\n    sys.stdout.write("working\\n")\n\n\nif __name__ == "__main__":\n    main()\n'
    ),
    "multi-line signature": "def main(\n    a=1,\n): return a\n\nmain()\n",
    "no trailing newline": "x = 1\nif x:\n    y = 2",
    "crlf": "import os\r\n\r\n# [block: other]\r\nx = 1\r\nif x:\r\n    x = 2\r\n",
    "lone cr": "x = 1\ry = x\r",
    "tabs": 'if __name__ == "__main__":\n\tx = 1\n\tif x:\n\t\tx = 2\n\tprint(x)\n',
    "string with comment lines": 'x = """\n# not a comment\n  indented text\n"""\n# [block: model]\ny = x\n',
    "future import": (
        '"""Doc."""\n# [block: imports]\nfrom __future__ import annotations\n# [block: other]\nx: int = 1\n'
    ),
    "async and class": (
        "import asyncio\n\nclass A:\n    x = 1\n\nasync def main():\n    await asyncio.sleep(0)\n\n"
        "asyncio.run(main())\n"
    ),
    "match and walrus": (
        "match (n := 3):\n    case 1:\n        pass\n    case [a, *rest]:\n        pass\n"
        "    case {'k': v, **kw}:\n        pass\n"
    ),
    "unknown marker": "# [block: feature_engineering]\nx = 1\n# [block: wibble]\ny = 2\n",
}


@pytest.mark.parametrize("name", ODD_SCRIPTS)
def test_odd_but_valid_python_splits_splices_and_instruments(name):
    code = ODD_SCRIPTS[name]
    blocks = split_blocks(code)
    for before, after in pairwise(blocks):
        assert before.end < after.start
    for block in blocks:
        assert block.kind in KINDS
        assert splice(code, block, block.source) == code
    ast.parse(instrument(code, blocks))
    variants, _ = ablation_variants(code, blocks, skip_kinds=())
    for variant in variants:
        ast.parse(variant.code)


def test_empty_script_has_no_blocks():
    assert split_blocks("") == []
    assert split_blocks("# just a comment\n") == []


def test_unknown_marker_kinds_map_to_a_known_kind():
    assert [b.kind for b in split_blocks(ODD_SCRIPTS["unknown marker"])] == ["preprocess", "other"]


@pytest.mark.parametrize("module", ["textwrap", "dataclasses", "json.decoder"])
def test_standard_library_modules_split_into_exact_spans(module):
    code = Path(__import__(module, fromlist=["_"]).__file__).read_text()
    blocks = split_blocks(code)
    assert blocks
    lines = code_lines(code)
    for block in blocks:
        assert block.source == "\n".join(lines[block.start - 1 : block.end])
        assert splice(code, block, block.source) == code
    ast.parse(instrument(code, blocks))


# --- splice ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURES)
def test_splicing_a_blocks_own_source_returns_the_identical_script(name):
    code = script(name)
    for block in split_blocks(code):
        assert splice(code, block, block.source) == code
        assert splice(code, block, block.source.strip("\n") + "\n") == code


def test_splice_reindents_new_code_and_changes_only_that_span(input_dir):
    code = script("main_guard")
    block = next(b for b in split_blocks(code) if b.key == "model#0")
    new = "# [block: model]\nmodel = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=2000))\n"
    spliced = splice(code, block, new)
    old_lines, new_lines = code_lines(code), code_lines(spliced)
    assert new_lines[: block.start - 1] == old_lines[: block.start - 1]
    assert new_lines[block.start - 1 : block.end] == [
        "    # [block: model]",
        "    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=2000))",
    ]
    assert new_lines[block.end :] == old_lines[block.end :]
    (run,) = run_scripts([spliced], input_dir)
    assert run.returncode == 0, run.stderr
    assert run.score is not None


def test_splice_keeps_the_marker_when_the_new_code_has_none():
    code = script("marked")
    model = split_blocks(code)[5]
    spliced = splice(code, model, "model = RandomForestClassifier(n_estimators=300, random_state=0)")
    assert "# [block: model]\nmodel = RandomForestClassifier(n_estimators=300, random_state=0)\n" in spliced
    assert [b.key for b in split_blocks(spliced)] == [b.key for b in split_blocks(code)]


def test_splicing_with_a_stale_block_is_refused():
    code = script("marked")
    blocks = split_blocks(code)
    shifted = splice(code, blocks[2], "# [block: preprocess]\npass")  # later blocks move up
    with pytest.raises(SpliceError, match="model#0 is stale"):
        splice(shifted, blocks[5], "model = None")
    with pytest.raises(SpliceError, match="stale"):
        instrument(shifted, blocks)


def test_splicing_code_that_does_not_parse_is_refused():
    code = script("main_guard")
    block = next(b for b in split_blocks(code) if b.key == "model#0")
    with pytest.raises(SpliceError, match="model#0 .*invalid Python"):
        splice(code, block, "model = make_pipeline(")
    with pytest.raises(SpliceError, match="invalid Python"):
        splice(code, block, "    x = 1\n  y = 2")
    assert isinstance(SpliceError("x"), ValueError)


def test_splice_leaves_multiline_string_contents_alone():
    code = 'def main():\n    text = """\nleft\n    kept\n"""\n    print(text)\n\n\nmain()\n'
    block = split_blocks(code)[0]
    spliced = splice(code, block, 'text = """\nleft\n    kept\n"""\nprint(text.upper())\n')
    assert spliced == 'def main():\n    text = """\nleft\n    kept\n"""\n    print(text.upper())\n\n\nmain()\n'


# --- ablation_variants -----------------------------------------------------------------------------------------


def test_variants_parse_and_really_run_to_a_score(variant_runs):
    for name, runs in variant_runs.items():
        assert [(v.block_key, v.action) for v, _ in runs] == VARIANTS[name]
        for variant, run in runs:
            ast.parse(variant.code)
            assert variant.code != script(name)
            assert run.returncode == 0, f"{name} {variant.block_key}:\n{run.stderr}"
            assert run.score is not None


def test_a_removed_block_is_gone_and_a_simplified_one_replaced(variant_runs):
    marked = {v.block_key: v for v, _ in variant_runs["marked"]}
    removed = marked["preprocess#0"]
    assert "radius_texture_ratio" not in removed.code
    assert "pass  # ablation: preprocess#0 removed" in removed.code
    assert removed.description == "remove preprocess#0 (lines 13-17: ratios between size and texture measurements)"
    simplified = marked["model#0"]
    assert "model = RandomForestClassifier(n_estimators=10, max_depth=2, random_state=0)" in simplified.code
    assert "n_estimators=100" not in simplified.code
    assert simplified.kind == "model"


def test_blocks_that_later_code_needs_are_skipped_with_the_reason():
    _, skipped = ablation_variants(script("marked"))
    assert dict(skipped) == {
        "imports#0": "imports blocks are not ablated",
        "load_data#0": "load_data blocks are not ablated",
        "preprocess#1": "removing it would leave `X_test`, `X_train`, `X_valid`, `y_train`, `y_valid` undefined",
        "model#0": "removing it would leave `model` undefined",
        "train#0": "it prints the validation score",
        "predict#0": "predict blocks are not ablated",
    }


def test_simplify_is_asked_only_for_blocks_that_cannot_be_removed():
    asked = []

    def simplify(block):
        asked.append(block.key)  # and offers nothing simpler

    variants, skipped = ablation_variants(script("lgbm"), simplify=simplify)
    assert [v.block_key for v in variants] == ["preprocess#1"]
    assert asked == ["preprocess#0", "other#0", "model#0", "train#0"]
    assert ("other#0", "removing it would leave `params` undefined") in skipped


def test_a_simplified_block_that_does_not_parse_is_skipped():
    variants, skipped = ablation_variants(script("marked"), simplify=lambda block: "model = (")
    assert [v.action for v in variants] == ["remove", "remove"]
    reason = dict(skipped)["model#0"]
    assert reason.startswith("removing it would leave `model` undefined, and its simplified version cannot be spliced")


def test_removing_the_only_block_of_a_function_body_leaves_pass():
    code = ODD_SCRIPTS["guard calling main"]
    variants, _ = ablation_variants(code)
    assert [(v.block_key, v.action) for v in variants] == [("other#0", "remove")]
    assert "def main():\n    pass  # ablation: other#0 removed\n" in variants[0].code
    done = subprocess.run([sys.executable, "-c", variants[0].code], check=False, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stdout == ""


# --- instrument ------------------------------------------------------------------------------------------------


def test_instrumented_script_reports_every_stage_and_otherwise_runs_the_same(input_dir, base_runs):
    code = script("marked")
    instrumented = instrument(code)
    assert instrumented.count('print("[mlestar-progress] ') == len(split_blocks(code))
    (run,) = run_scripts([instrumented], input_dir)
    assert run.returncode == 0, run.stderr
    assert reached_stages(run.stdout) == ["imports", "load_data", "preprocess", "model", "train", "predict"]
    lines = run.stdout.splitlines(keepends=True)
    without_progress = "".join(line for line in lines if "[mlestar-progress]" not in line)
    assert without_progress == base_runs["marked"].stdout


def test_instrumented_failing_script_shows_the_stages_it_reached(input_dir):
    code = script("main_guard")
    model = next(b for b in split_blocks(code) if b.key == "model#0")
    broken = splice(code, model, "model = make_pipeline(StandardScaler(), NoSuchClassifier())")
    instrumented = instrument(broken)
    assert '    print("[mlestar-progress] preprocess", flush=True)' in instrumented.split("\n")
    (run,) = run_scripts([instrumented], input_dir)
    assert run.returncode != 0 and "NameError" in run.stderr
    assert reached_stages(run.stdout) == ["imports", "other", "load_data", "preprocess"]


def test_reached_stages_reads_progress_lines_in_order_once_each():
    stdout = "[mlestar-progress] imports\nnoise\n[mlestar-progress] preprocess\n[mlestar-progress] preprocess\n"
    assert reached_stages(stdout) == ["imports", "preprocess"]
    assert reached_stages("") == []


# --- summary and pick_target -----------------------------------------------------------------------------------


def test_effect_is_positive_when_the_block_helps_whichever_way_the_metric_points():
    assert effect_of(0.90, 0.85, maximize=True) == pytest.approx(0.05)  # AUC fell without the block
    assert effect_of(0.30, 0.35, maximize=False) == pytest.approx(0.05)  # log loss rose without the block
    assert effect_of(0.90, 0.95, maximize=True) == pytest.approx(-0.05)  # the block was hurting
    assert effect_of(0.90, None, maximize=True) is None
    assert effect_of(0.90, float("nan"), maximize=True) is None


def test_summary_of_real_runs_for_both_metric_directions(base_runs, variant_runs):
    for name, maximize in (("marked", True), ("lgbm", False)):  # ROC AUC and log loss
        base = base_runs[name].score
        runs = [(v, "ok" if r.returncode == 0 else "error", r.score) for v, r in variant_runs[name]]
        summary = summarize(base, maximize, runs)
        for row, (_, _, score) in zip(summary.rows, runs):
            assert row.status == "ok"
            assert row.effect == pytest.approx(base - score if maximize else score - base)
        assert summary.table().splitlines()[0] == "| block | kind | action | score | effect | status |"


def test_table_puts_the_most_helpful_block_first_and_failures_last():
    summary = AblationSummary(0.9, True, [
        AblationRow("preprocess#0", "preprocess", "remove", "d", "ok", 0.88, 0.02),
        AblationRow("model#0", "model", "simplify", "d", "error", None, None),
        AblationRow("train#0", "train", "simplify", "d", "ok", 0.80, 0.10),
        AblationRow("other#0", "other", "remove", "d", "ok", 0.93, -0.03),
    ])
    assert summary.table().splitlines()[2:] == [
        "| train#0 | train | simplify | 0.8 | +0.1 | ok |",
        "| preprocess#0 | preprocess | remove | 0.88 | +0.02 | ok |",
        "| other#0 | other | remove | 0.93 | -0.03 | ok |",
        "| model#0 | model | simplify | n/a | n/a | error |",
    ]


def test_summary_survives_a_json_round_trip():
    summary = AblationSummary(0.31, False, [
        AblationRow("preprocess#1", "preprocess", "remove", "remove preprocess#1", "ok", 0.33, 0.02),
        AblationRow("model#0", "model", "simplify", "simplify model#0", "timeout", None, None),
    ])
    again = AblationSummary.from_dict(json.loads(json.dumps(summary.to_dict())))
    assert again == summary


def rows(**effects) -> AblationSummary:
    """A summary with one row per block key (`preprocess_1=0.02`); None makes a failed variant."""
    return AblationSummary(0.9, True, [
        AblationRow(key.replace("_", "#"), key.split("_")[0], "remove", "", "ok" if e is not None else "error",
                    None if e is None else 0.9 - e, e)
        for key, e in effects.items()
    ])


def test_pick_target_takes_the_largest_effect_either_way():
    blocks = split_blocks(script("marked"))
    assert pick_target(rows(preprocess_0=0.01, preprocess_2=-0.04, model_0=0.02), blocks, set()).key == "preprocess#2"
    assert pick_target(rows(preprocess_0=0.01, preprocess_2=0.0, model_0=0.02), blocks, set()).key == "model#0"


def test_pick_target_skips_refined_blocks_and_unrefinable_kinds():
    blocks = split_blocks(script("marked"))
    summary = rows(preprocess_0=0.01, preprocess_2=-0.04, model_0=0.02, imports_0=0.5, predict_0=0.9)
    assert pick_target(summary, blocks, {"preprocess#2"}).key == "model#0"
    assert pick_target(summary, blocks, {"preprocess#2", "model#0"}).key == "preprocess#0"


def test_pick_target_counts_failures_only_when_nothing_else_ran():
    blocks = split_blocks(script("marked"))
    assert pick_target(rows(model_0=None, preprocess_0=0.001), blocks, set()).key == "preprocess#0"
    assert pick_target(rows(preprocess_0=0.05, model_0=None), blocks, {"preprocess#0"}).key == "model#0"


def test_pick_target_falls_back_to_the_first_unrefined_block_then_none():
    blocks = split_blocks(script("marked"))
    empty = AblationSummary(0.9, True, [])
    assert pick_target(empty, blocks, set()).key == "preprocess#0"
    assert pick_target(empty, blocks, {"preprocess#0", "preprocess#1"}).key == "preprocess#2"
    refinable = {b.key for b in blocks if b.kind not in ("imports", "load_data", "predict")}
    assert pick_target(rows(preprocess_0=0.3), blocks, refinable) is None


def test_one_round_ablate_pick_and_rewrite_on_a_real_script(base_runs, variant_runs):
    code = script("marked")
    runs = [(v, "ok" if r.returncode == 0 else "error", r.score) for v, r in variant_runs["marked"]]
    summary = summarize(base_runs["marked"].score, True, runs)
    blocks = split_blocks(code)
    target = pick_target(AblationSummary.from_dict(summary.to_dict()), blocks, set())
    measured = {r.block_key: abs(r.effect) for r in summary.rows}
    assert target.key == max(measured, key=measured.get)
    rewritten = splice(code, target, target.source.replace("# [block: ", "# refined once\n# [block: "))
    assert [b.key for b in split_blocks(rewritten)] == [b.key for b in blocks]
    assert next(b for b in split_blocks(rewritten) if b.key == target.key).source.startswith("# refined once\n")
