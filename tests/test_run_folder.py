"""One output folder, one run: a second run into a busy folder is refused with one line (the lock dies with a
killed run), and a new run never inherits the budget an earlier one spent there; its clock starts at first use."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from core.errors import TaskError
from graphs.build import build_graph
from graphs.runner import RunContexts, open_run, output_lock

ROOT = Path(__file__).resolve().parents[1]


def penguins(tmp_path: Path, **budget) -> Path:
    folder = tmp_path / "penguins"
    shutil.copytree(ROOT / "examples" / "penguins", folder, ignore=shutil.ignore_patterns("private"))
    spec = yaml.safe_load((folder / "task.yaml").read_text())
    spec.update(output=str(tmp_path / "out"), budget={**spec["budget"], **budget})
    (folder / "task.yaml").write_text(yaml.safe_dump(spec))
    return folder / "task.yaml"


def test_a_second_run_into_a_busy_output_folder_is_refused_with_one_line_and_a_kill_frees_it(tmp_path):
    task, out = penguins(tmp_path, total_seconds=120), tmp_path / "out"
    first = subprocess.Popen([sys.executable, "-m", "core.run", str(task)], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (out / "runs.sqlite").is_file():
            time.sleep(0.2)
        assert first.poll() is None, "setup: the first run should still be running"
        second = subprocess.run([sys.executable, "-m", "core.run", str(task)], cwd=ROOT, capture_output=True,
                                text=True, timeout=120)
        assert second.returncode == 2
        assert second.stderr.strip().splitlines() == [
            f"error: {out}: another run is using this output folder (pid {first.pid}); wait for it to finish, "
            f"or pass another --out"]
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    with output_lock(out):  # the killed run's lock went with it
        pass


def test_a_new_embedded_run_into_an_old_folder_gets_its_whole_budget_from_its_first_node_on(tmp_path):
    task = penguins(tmp_path, total_seconds=300)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "clock.json").write_text(json.dumps({"elapsed": 250.0}))  # an earlier run's time
    rc = open_run(task)
    time.sleep(1.0)  # an app may build the run long before it runs the graph
    assert rc.clock.left() > 299.0


def test_a_graph_that_serves_any_task_refuses_an_input_that_names_none_in_one_line():
    graph = build_graph(contexts=RunContexts()).compile()
    with pytest.raises(TaskError, match=r"^the graph's input names no task: invoke it with \{'task'"):
        graph.invoke({})


def test_a_thread_carried_on_keeps_its_clock_and_a_new_one_starts_at_zero(tmp_path):
    task = penguins(tmp_path, total_seconds=300)
    first = open_run(task, run_id="thread-a")
    first.clock.before = 100.0
    first.clock.save()

    assert open_run(task, run_id="thread-a").clock.elapsed() >= 100.0  # the same thread, resumed
    assert open_run(task, run_id="thread-b").clock.elapsed() < 5.0
