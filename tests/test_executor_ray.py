"""The ray executor on a real two-node cluster started on this machine: scripts spread over both nodes and score as
under the local executor, a pipeline run matches a local one, a node killed mid-run costs one script a clear
status, and what must stay on the driver (API keys, private files) does; plus the bundles that carry the files."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import tarfile
import threading
import time
from pathlib import Path
from textwrap import dedent

import pandas as pd
import pytest
import yaml

from core.bundles import pack_inputs, unpack_inputs
from core.executor import ExecutorOptions, RunRequest, Status
from core.local_executor import LocalExecutor
from core.ray_executor import INPUT_CACHE, LOST, NODE_FILE, RayOptions, make_ray_executor
from pipeline_runs import core_run, task_copy

SCRIPT = dedent("""\
    import time
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    open("started", "w").close()
    time.sleep({sleep})
    train, test = pd.read_csv("input/train.csv"), pd.read_csv("input/test.csv")
    X, y = train.drop(columns=["id", "species"]), train["species"]
    model = LogisticRegression(C={c}, max_iter=1000).fit(X.iloc[:80], y.iloc[:80])
    print("Final Validation Performance:", model.score(X.iloc[80:], y.iloc[80:]))
    pd.DataFrame({{"id": train["id"].iloc[80:], "species": model.predict(X.iloc[80:])}}).to_csv(
        "val_predictions.csv", index=False)
    pd.DataFrame({{"id": test["id"], "species": model.predict(test.drop(columns=["id"]))}}).to_csv(
        "submission.csv", index=False)
""")


@pytest.fixture(scope="module")
def cluster():
    """A head and a second node, one CPU each, stopped (their processes killed, their folder removed) at the end
    of the module, whatever happened."""
    ray = pytest.importorskip("ray")
    from ray_cluster import start_cluster

    started = start_cluster(nodes=2, cpus=1)
    try:
        yield started
    finally:
        ray.shutdown()  # this process joined it as a driver through the executor
        started.stop()


@pytest.fixture
def inputs(make_competition) -> Path:
    return make_competition("inputs", description=False, answers=False)


def request(inputs: Path, c: float = 1.0, sleep: float = 0.0, timeout: float = 60) -> RunRequest:
    return RunRequest(code=SCRIPT.format(c=c, sleep=sleep), input_dir=inputs, timeout=timeout, id_column="id")


def node_of(result) -> str:
    return json.loads((result.workdir / NODE_FILE).read_text())["node_id"]


@pytest.mark.slow
def test_scripts_spread_over_both_nodes_and_score_as_under_the_local_executor(cluster, inputs, tmp_path):
    ray_ex = make_ray_executor({"address": cluster.address}, out_dir=tmp_path / "ray")
    local = LocalExecutor(ExecutorOptions(workers=2), out_dir=tmp_path / "local")
    requests = [request(inputs, c, sleep=1) for c in (0.01, 0.1, 1.0, 10.0)]

    remote, here = ray_ex.run_many(requests), local.run_many(requests)

    assert ray_ex.options.workers == 2  # what the cluster fits: one script per node
    assert [r.status for r in remote] == [Status.OK] * 4, [r.error_tail for r in remote]
    assert [r.reported_score for r in remote] == [r.reported_score for r in here]
    for r, h in zip(remote, here):
        assert r.workdir.parent == tmp_path / "ray" / "runs"  # the outputs landed in the driver's run folders
        for name in ("val_predictions.csv", "submission.csv"):
            assert pd.read_csv(r.workdir / name).equals(pd.read_csv(h.workdir / name))
        assert "Final Validation Performance" in (r.workdir / "stdout.txt").read_text()
    assert len({node_of(r) for r in remote}) == 2
    # the input folder went through the object store: unpacked once on each node (they share a temp folder here)
    assert (cluster.root / "tmp" / INPUT_CACHE / ray_ex.fingerprint(inputs)[:24] / "input" / "train.csv").is_file()
    # the cache is the driver's: the same requests again run nowhere
    again = ray_ex.run_many(requests)
    assert all(r.cached for r in again) and [r.reported_score for r in again] == [r.reported_score for r in remote]


@pytest.mark.slow
def test_with_a_shared_dir_workers_use_the_driver_s_folders_in_place(cluster, inputs, tmp_path):
    (inputs / "notes.txt").write_text("an input folder no other test has")  # its own fingerprint
    ex = make_ray_executor({"address": cluster.address, "workers": 1, "shared_dir": str(tmp_path)},
                           out_dir=tmp_path / "ray")

    result = ex.run(request(inputs))

    assert result.ok, result.error_tail
    assert result.workdir.parent == tmp_path / "ray" / "runs" and (result.workdir / "submission.csv").is_file()
    # nothing went through the object store: no node unpacked this input folder
    assert not (cluster.root / "tmp" / INPUT_CACHE / ex.fingerprint(inputs)[:24]).exists()


@pytest.mark.slow
def test_the_driver_s_api_keys_never_reach_a_script_on_a_worker(cluster, inputs, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-driver-only-secret")
    peek = SCRIPT.format(c=1.0, sleep=0) + dedent("""\
        import os
        print("environment holds the key:", any("sk-driver-only" in v for v in os.environ.values()))
    """)
    ex = make_ray_executor({"address": cluster.address, "workers": 1}, out_dir=tmp_path / "ray")

    result = ex.run(RunRequest(code=peek, input_dir=inputs, timeout=120, id_column="id"))

    assert result.ok, result.error_tail
    assert "environment holds the key: False" in (result.workdir / "stdout.txt").read_text()


@pytest.mark.slow
def test_a_pipeline_with_executor_ray_runs_on_both_nodes_and_matches_a_local_run(cluster, tmp_path):
    budget = dict(models=2, plans=1, outer_steps=1, ensemble_rounds=1, debug_retries=0, total_seconds=120,
                  run_timeout=60)
    local_task = task_copy(tmp_path / "local", "penguins", **budget)
    ray_task = task_copy(tmp_path / "ray", "penguins", **budget)
    spec = yaml.safe_load(ray_task.read_text())
    spec["executor"] = {"name": "ray", "options": {"address": "auto"}}  # as docs/ray.md says, on a cluster's machine
    ray_task.write_text(yaml.safe_dump(spec))

    for task in (local_task, ray_task):
        # RAY_TMPDIR: where `auto` finds the cluster this machine belongs to (ours keeps its files there)
        done = core_run(str(task), env={**os.environ, "RAY_TMPDIR": str(cluster.root)})
        assert done.returncode == 0, done.stderr[-3000:]

    def outcome(task: Path) -> tuple[list, dict]:
        out = task.parents[1] / "out"
        with sqlite3.connect(out / "runs.sqlite") as db:
            rows = sorted(db.execute("SELECT node, cache_key, status, reported_score FROM attempts"))
        return rows, json.loads((out / "result.json").read_text())["scores"]

    # the same scripts on the same data, with the same outcomes and scores, whoever ran them
    assert outcome(ray_task) == outcome(local_task)
    nodes = {json.loads(p.read_text())["node_id"] for p in (tmp_path / "ray" / "out" / "runs").glob(f"*/{NODE_FILE}")}
    assert len(nodes) == 2


@pytest.mark.slow
def test_a_node_killed_mid_run_costs_its_script_a_clear_status_and_the_others_finish(cluster, inputs, tmp_path):
    import ray

    ex = make_ray_executor({"address": cluster.address, "workers": 3}, out_dir=tmp_path / "ray")
    before = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    cluster.add_node(cpus=1)  # a third node, killed below: the module's two stay whole
    third = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["NodeID"] not in before)
    requests = [request(inputs, c, sleep=8) for c in (0.1, 1.0, 10.0)]
    results: list = []
    runner = threading.Thread(target=lambda: results.extend(ex.run_many(requests)))
    runner.start()
    deadline = time.time() + 90
    while time.time() < deadline:  # all three scripts have started, one on each node
        if len(list((cluster.root / "tmp").glob("mlestar-ray-run-*/run/started"))) == 3:  # each worker's run folder
            break
        time.sleep(0.2)
    assert cluster.kill_node(third)
    runner.join(timeout=120)

    assert sorted(r.status for r in results) == [Status.ERROR, Status.OK, Status.OK]
    lost = next(r for r in results if not r.ok)
    assert lost.message.startswith(LOST) and "\n" not in lost.message
    # the search goes on: the lost script runs again on the nodes left (a lost worker is never served from the cache)
    again = ex.run(requests[results.index(lost)])
    assert again.ok and not again.cached


def test_without_an_address_the_ray_executor_refuses_in_one_line(tmp_path, cli):
    task = task_copy(tmp_path, "penguins")
    spec = yaml.safe_load(task.read_text())
    for options, says in (({}, "ray start --head"), ({"address": "auto", "num_cpu": 1}, "unknown executor options")):
        spec["executor"] = {"name": "ray", "options": options}
        task.write_text(yaml.safe_dump(spec))
        done = cli("validate", str(task))
        assert done.returncode == 2, done.stderr
        assert says in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize("options, says", [
    ({"gpus": [0]}, "num_gpus"), ({"num_cpus": 0}, "num_cpus"), ({"retries": -1}, "retries"),
    ({"shared_dir": "relative/path"}, "absolute"), ({"memory_request_mb": 0}, "memory_request_mb"),
])
def test_ray_options_refuse_what_a_cluster_run_could_not_use_before_joining_one(options, says):
    with pytest.raises(ValueError, match=says):
        RayOptions.from_dict({"address": "127.0.0.1:1", **options})


def test_an_input_bundle_carries_the_folder_and_its_linked_assets_and_nothing_else(tmp_path):
    task = tmp_path / "task"
    (task / "images").mkdir(parents=True)
    (task / "images" / "a.png").write_bytes(b"png")
    (task / "private").mkdir()
    (task / "private" / "answers.csv").write_text("id,y\n1,0\n")
    folder = tmp_path / "input"
    (folder / "folds" / "0").mkdir(parents=True)
    for top in (folder, folder / "folds" / "0"):
        (top / "train.csv").write_text("id,y\n1,0\n")
        (top / "images").symlink_to(task / "images")  # as core.dataprep links a task's asset folder
    (folder / "folds" / "0" / "deeper").mkdir()
    (folder / "folds" / "0" / "deeper" / "answers").symlink_to(task / "private" / "answers.csv")

    bundle = pack_inputs(folder)
    names = tarfile.open(fileobj=io.BytesIO(bundle)).getnames()
    copy = unpack_inputs(bundle, tmp_path / "worker")

    assert not any("answers" in n for n in names), names  # a link further down is never followed
    assert sum(n.endswith("a.png") for n in names) == 1  # one copy of an asset, however many links reach it
    assert (copy / "images" / "a.png").read_bytes() == b"png"
    assert (copy / "folds" / "0" / "images" / "a.png").read_bytes() == b"png"
    assert (copy / "images").resolve().is_relative_to(tmp_path / "worker")
    assert (copy / "folds" / "0" / "train.csv").read_text() == "id,y\n1,0\n"
