"""report.html: one self-contained page (plots embedded, nothing fetched) built from result.json, the run store and
final_solution.py, checked as a page in a real headless browser (Debian's chromium driven by Playwright)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ablation import split_blocks
from core.store import RunStore
from graphs.report_html import best_so_far, report_html, write_report_html

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

CODE = '''import pandas as pd

# [block: load_data]
train = pd.read_csv("input/train.csv")

# [block: model]
from sklearn.linear_model import LogisticRegression
model = LogisticRegression(C=0.5)

# [block: train]
model.fit(train[["x"]], train["y"])
'''


def small_result(**changes) -> dict:
    result = {
        "task": "toy", "run_id": "r1", "metric": "accuracy", "direction": "maximize", "policy": "heuristic",
        "scores": {"best_initial": 0.8, "final": 0.9, "final_fidelity": "full"},
        "stages": [{"stage": "initial", "score": 0.8, "attempt": 1, "label": "linear"},
                   {"stage": "outer_1", "score": 0.9, "attempt": 3, "label": "linear", "block": "model#0"},
                   {"stage": "final", "score": 0.9, "attempt": 4, "label": "linear", "fidelity": "full"}],
        "refined_blocks": ["model#0"],
        "ablations": [{"step": 1, "rows": [{"block_key": "model#0", "effect": 0.1, "status": "ok"},
                                           {"block_key": "load_data#0", "effect": None, "status": "error"}],
                       "skipped": [], "text": "model#0 matters most <b>"}],
        "final": {"status": "ok", "attempt": 4},
        "runs_by_node": {"draft": {"runs": 1, "script_seconds": 2.0}, "refine": {"runs": 1, "script_seconds": 3.0}},
        "seconds_by_node": {"draft": 2.5, "refine": 3.2, "submit": 1.0},
        "wall_seconds": 9.0, "budget_seconds": 60,
    }
    return {**result, **changes}


def attempt(attempt_id, node, parent_id, score, t, **extra) -> dict:
    return {"attempt_id": attempt_id, "node": node, "parent_id": parent_id, "score": score, "status": "ok",
            "cached": 0, "fidelity": "search", "seconds": 1.0, "started_at": t - 1, "finished_at": t,
            "plan": f"plan of {attempt_id} <script>", **extra}


ATTEMPTS = [attempt(1, "draft", None, 0.8, 101), attempt(2, "ablate", 1, 0.7, 103),
            attempt(3, "refine", 1, 0.9, 105), attempt(4, "submit", 3, 0.9, 107, fidelity="full"),
            attempt(5, "refine:debug", 3, None, 108, status="error")]


def test_the_page_is_self_contained_with_embedded_plots_and_escaped_text():
    page = report_html(small_result(), ATTEMPTS, CODE, started_at=100)
    images = re.findall(r"<img [^>]*src='([^']*)'", page)
    assert len(images) == 5  # score by stage, attempts over time, best so far, the ablation, time per node
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert "<script" not in page and "<link" not in page and "http://" not in page and "https://" not in page
    assert "plan of 1 &lt;script&gt;" in page and "model#0 matters most &lt;b&gt;" in page


def test_the_anytime_curve_keeps_each_improvement_in_the_metrics_direction_and_leaves_out_submit():
    attempts = ATTEMPTS + [attempt(6, "submit:debug", 3, 0.99, 109), attempt(7, "ensemble", 3, 0.85, 104)]
    # 1 (0.8 at 1 s), 7 (0.85 at 4 s), 3 (0.9 at 5 s); 2 is worse, 4 and 6 are submit's, 5 has no score.
    assert best_so_far(attempts, 100, maximize=True) == [(1, 0.8), (4, 0.85), (5, 0.9)]
    assert best_so_far(attempts, 100, maximize=False) == [(1, 0.8), (3, 0.7)]
    assert best_so_far([attempt(4, "submit", None, 0.9, 107)], 100, maximize=True) == []


def test_the_anytime_plot_says_when_it_shows_scores_from_elsewhere():
    plain = report_html(small_result(), ATTEMPTS, CODE, started_at=100)
    compared = report_html(small_result(), ATTEMPTS, CODE, started_at=100,
                           baselines={"lightgbm (test)": 0.85, "flaml (test)": 0.88}, final_test=0.87)
    assert "Best validation score so far" in plain and "dashed lines" not in plain
    assert "dashed lines and the star are scores as labelled" in compared
    assert len(re.findall("<img ", compared)) == len(re.findall("<img ", plain)) == 5
    only_submit = report_html(small_result(), [attempt(4, "submit", None, 0.9, 107)], CODE, started_at=100)
    assert "No scored attempt to draw the best validation score over time from." in only_submit


def test_the_solution_tree_nests_each_attempt_under_the_one_it_came_from():
    page = report_html(small_result(), ATTEMPTS, CODE, started_at=100)
    tree = page[page.index("<ul class='tree'>"):]
    # 1 is a root; 2 and 3 are its children; 4 (the final submission) and 5 (a failed debug) are 3's.
    assert re.search(r"data-attempt='1'.*?<ul><li>.*?data-attempt='2'.*?</li><li>.*?data-attempt='3'"
                     r".*?<ul><li>.*?data-attempt='4'.*?</li><li>.*?data-attempt='5'", tree)
    assert "class='att chosen final' data-attempt='4'>" in tree and "★" in tree
    assert "<span class='failed'>error</span>" in tree


def test_the_refined_blocks_are_highlighted_in_the_final_code():
    page = report_html(small_result(), ATTEMPTS, CODE, started_at=100)
    marked = re.findall(r"<span class='line refined' data-block='model#0'><span class='ln'>(\d+)</span>", page)
    [block] = [b for b in split_blocks(CODE) if b.key == "model#0"]
    assert [int(n) for n in marked] == list(range(block.start, block.end + 1))
    assert "refined in outer step 1" in page


def test_a_refined_block_missing_from_the_final_code_is_said_so():
    page = report_html(small_result(refined_blocks=["preprocess#3"]), ATTEMPTS, CODE, started_at=100)
    assert "preprocess#3 (outer step 1): not a block of the final code" in page
    assert "class='line refined'" not in page


def test_writing_without_store_or_solution_still_gives_a_page(tmp_path):
    path = write_report_html(tmp_path, small_result(ablations=[], stages=[]), tmp_path / "runs.sqlite")
    page = path.read_text()
    assert path == tmp_path / "report.html"
    assert "No attempts in the run store." in page and "No final_solution.py in the output folder." in page
    assert not (tmp_path / "runs.sqlite").exists()  # reading never creates a store


# --- a real run in a real browser -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def penguins_run(tmp_path_factory) -> Path:
    """A short real pipeline run on a copy of examples/penguins; returns its output folder with report.html."""
    root = tmp_path_factory.mktemp("penguins-run")
    task_dir = root / "penguins"
    shutil.copytree(ROOT / "examples" / "penguins", task_dir, ignore=shutil.ignore_patterns("private", "out"))
    spec = yaml.safe_load((task_dir / "task.yaml").read_text())
    spec["budget"].update(models=2, plans=1, outer_steps=1, ensemble_rounds=1, total_seconds=200)
    spec["strategy"] = {"anytime": False}  # the first pass only: this test is not about the anytime search
    (task_dir / "task.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    out = root / "out"
    done = subprocess.run([sys.executable, "-m", "core.run", str(task_dir / "task.yaml"), "--out", str(out)],
                          check=False, capture_output=True, text=True, cwd=ROOT, timeout=400)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads((out / "result.json").read_text())
    # As the bench rewrites it: with baselines' test scores and the final submission's.
    write_report_html(out, result, out / "runs.sqlite", baselines={"lightgbm (test)": 0.97, "flaml (test)": 0.985},
                      final_test=0.99)
    return out


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_report_of_a_real_run_shows_its_plots_tree_and_highlighted_code_in_chromium(penguins_run, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.is_file():
        pytest.skip("Debian's chromium is not installed (.ci/setup installs it when run as root)")
    out = penguins_run
    result = json.loads((out / "result.json").read_text())
    code = (out / "final_solution.py").read_text()
    store = RunStore(out / "runs.sqlite")
    attempts = store.attempts(run_id=result["run_id"])
    store.close()

    console, requests = [], []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning")
                    else None)
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            page.on("request", lambda r: requests.append(r.url))
            page.goto((out / "report.html").as_uri(), wait_until="load")

            assert console == []
            assert all(url.startswith(("file:", "data:")) for url in requests), requests
            images = page.evaluate("""[...document.images].map(i => ({complete: i.complete, w: i.naturalWidth,
                h: i.naturalHeight, box: i.getBoundingClientRect().width * i.getBoundingClientRect().height}))""")
            # stages, attempts over time, best validation score over time, ablations, time
            assert len(images) == 4 + len(result["ablations"])
            assert all(i["complete"] and i["w"] > 0 and i["h"] > 0 and i["box"] > 0 for i in images), images
            decoded = page.evaluate("Promise.all([...document.images].map(i => i.decode().then(() => true)))")
            assert all(decoded)
            anytime = page.locator("img[alt^='Best validation score so far']")
            assert anytime.count() == 1 and anytime.is_visible()
            assert "dashed lines and the star" in anytime.get_attribute("alt")
            assert anytime.evaluate("i => i.decode().then(() => i.naturalWidth > 0 && i.naturalHeight > 0)")

            # The tree holds every attempt, each under its parent.
            assert page.locator("ul.tree [data-attempt]").count() == len(attempts)
            for a in attempts:
                if a["parent_id"] is not None:
                    parent_li = page.locator(f"li:has(> [data-attempt='{a['parent_id']}'])")
                    assert parent_li.locator(f"[data-attempt='{a['attempt_id']}']").count() == 1
            assert page.locator(f".final[data-attempt='{result['final']['attempt']}']").is_visible()

            # The refined blocks' lines are highlighted, and only they.
            blocks = {b.key: b for b in split_blocks(code)}
            refined = [blocks[k] for k in dict.fromkeys(result["refined_blocks"]) if k in blocks]
            assert refined, "the run refined no block that is in the final code"
            lines = page.locator("pre.code .line.refined")
            assert lines.count() == sum(b.end - b.start + 1 for b in refined)
            shown = "\n".join(lines.nth(i).inner_text().split("\n", 1)[0] for i in range(lines.count()))
            for b in refined:
                assert b.source.splitlines()[0].strip() in shown
            style = page.evaluate("""() => {
                const hl = document.querySelector('pre.code .line.refined');
                const plain = document.querySelector('pre.code .line:not(.refined)');
                return [getComputedStyle(hl).backgroundColor, getComputedStyle(plain).backgroundColor]; }""")
            assert style[0] != style[1]
            assert lines.first.is_visible()

            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 50_000
            print(f"screenshot: {shot}")
        finally:
            browser.close()
