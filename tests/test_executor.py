"""The local executor on real scripts: every status it reports, the content-hash cache, parallel runs, and what the
bubblewrap sandbox keeps from a script (other files, secrets in the environment, the network, unbounded output)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from textwrap import dedent

import pandas as pd
import pytest

import core
from core import sandbox
from core.executor import ExecutorOptions, RunRequest, Status
from core.local_executor import LocalExecutor

TRAIN_AND_SUBMIT = dedent("""\
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    train = pd.read_csv("input/train.csv")
    test = pd.read_csv("input/test.csv")
    X, y = train.drop(columns=["id", "species"]), train["species"]
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, test_size=0.25, random_state=0)
    model = LogisticRegression(max_iter=1000).fit(X_train, y_train)
    print("Final Validation Performance:", model.score(X_valid, y_valid))
    submission = pd.DataFrame({"id": test["id"], "species": model.predict(test.drop(columns=["id"]))})
    submission.to_csv("submission.csv", index=False)
""")


@pytest.fixture
def inputs(make_competition) -> Path:
    """The public files of the iris competition, as the framework prepares them for a script's input/."""
    return make_competition("inputs", description=False, answers=False)


@pytest.fixture
def executor(tmp_path):
    def make(**options) -> LocalExecutor:
        return LocalExecutor(ExecutorOptions(**{"workers": 2, **options}), out_dir=tmp_path / "out")
    return make


@pytest.fixture(params=["prlimit", "pre-exec"])
def limits(request, monkeypatch) -> str:
    """Both ways the caps reach a script: prlimit(1) in its command line, and the pre-exec function used where
    prlimit is missing (here: hidden from the executor)."""
    which = shutil.which
    if request.param == "pre-exec":
        monkeypatch.setattr(sandbox.shutil, "which", lambda name, *a, **k: None if name == "prlimit" else
                            which(name, *a, **k))
    elif which("prlimit") is None:
        pytest.skip("prlimit(1) is not installed here")
    return request.param


def request(code: str, inputs: Path, timeout: float = 60, **fields) -> RunRequest:
    return RunRequest(code=dedent(code), input_dir=inputs, timeout=timeout, id_column="id", **fields)


# --- statuses --------------------------------------------------------------------------------------------------

def test_a_script_that_trains_and_writes_a_valid_submission_is_ok_with_its_score(inputs, executor):
    result = executor().run(request(TRAIN_AND_SUBMIT, inputs))

    assert result.status == Status.OK, result.error_tail
    printed = [ln for ln in result.stdout_tail.splitlines() if ln.startswith("Final Validation Performance:")]
    assert result.reported_score == float(printed[-1].split(":")[1])
    assert 0.8 <= result.reported_score <= 1.0
    submission, sample = pd.read_csv(result.submission), pd.read_csv(inputs / "sample_submission.csv")
    assert list(submission.columns) == list(sample.columns)
    assert sorted(submission["id"]) == sorted(sample["id"])
    assert set(submission["species"]) <= {"setosa", "versicolor", "virginica"}
    assert (result.returncode, result.message) == (0, "")


def test_a_script_that_raises_is_an_error_with_the_traceback_tail(inputs, executor):
    code = """\
        import pandas as pd
        train = pd.read_csv("input/train.csv")
        print(train["petal_colour"].mean())
    """
    result = executor().run(request(code, inputs))

    assert result.status == Status.ERROR
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.error_tail
    assert result.error_tail.rstrip().endswith("KeyError: 'petal_colour'")


def alive(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


@pytest.mark.timeout(60)
def test_without_isolation_or_a_cgroup_a_child_in_a_session_of_its_own_dies_with_the_run(inputs, executor,
                                                                                       monkeypatch):
    # no cgroup to hold the run (a user without a delegated one): the child left the process group with setsid,
    # and is found by the mark it inherited in its environment
    monkeypatch.setattr(sandbox, "CGROUP_ROOTS", ())
    marker = f"{time.time_ns() % 1000003}.25"
    code = f"""\
        import subprocess
        subprocess.Popen(["sleep", "{marker}"], start_new_session=True)
        print("Final Validation Performance: 0")
    """
    started = time.monotonic()
    result = executor(isolation="none").run(request(code, inputs, timeout=20, check_submission=False))

    assert result.ok, result.error_tail
    assert alive(marker) == []
    assert time.monotonic() - started < 4  # not waiting on the pipes the child held


@pytest.mark.timeout(30)  # a regression would leave the child holding the output pipe: fail, do not hang
@pytest.mark.parametrize("isolation", ["none", "bwrap"])
def test_a_script_past_its_timeout_is_killed_with_every_process_it_started(isolation, inputs, executor):
    code = """\
        import subprocess, sys, time
        # a child that keeps appending to heartbeat.txt for as long as it lives
        beat = "import time\\nwhile True:\\n    open('heartbeat.txt', 'a').write('.')\\n    time.sleep(0.05)"
        subprocess.Popen([sys.executable, "-c", beat])
        time.sleep(60)
    """
    started = time.monotonic()
    result = executor(isolation=isolation).run(request(code, inputs, timeout=2))

    assert result.status == Status.TIMEOUT
    assert result.message == "killed after the 2 s timeout"
    assert time.monotonic() - started < 10
    heartbeat = result.workdir / "heartbeat.txt"
    beats = heartbeat.stat().st_size
    assert beats > 0  # the child did run
    time.sleep(0.5)
    assert heartbeat.stat().st_size == beats  # and it died with the script's process group


def test_a_script_over_its_memory_cap_is_out_of_memory(limits, inputs, executor):
    code = """\
        blocks = [bytearray(64 * 1024 * 1024) for _ in range(16)]  # 1 GB
        print("Final Validation Performance: 1.0")
    """
    result = executor(memory_mb=256).run(request(code, inputs))

    assert result.status == Status.OOM
    assert result.message == "out of memory (cap 256 MB): MemoryError"


@pytest.mark.parametrize("how", ["one big file", "many small files"])
def test_a_script_that_fills_its_folder_past_the_disk_cap_is_stopped_and_its_files_deleted(how, limits, inputs,
                                                                                            executor):
    write = ('open("big.bin", "wb").write(b"x" * 80_000_000)' if how == "one big file" else
             'import os\nos.mkdir("parts")\nfor i in range(40):\n    open(f"parts/{i}.bin", "wb").write(b"x" * 2_000_000)')
    result = executor(disk_mb=50).run(request(write + "\nprint('Final Validation Performance: 1')\n", inputs,
                                              check_submission=False))

    assert result.status == Status.DISK and "disk_mb" in result.error_tail
    left = sorted(p.name for p in result.workdir.iterdir() if p.name != "input")
    assert left == ["result.json", "solution.py", "stderr.txt", "stdout.txt"]  # what it wrote is gone


def test_a_script_that_starts_more_threads_than_the_process_cap_is_stopped_with_its_own_status(limits, inputs,
                                                                                              executor):
    probe = sandbox.ProcessCap(10, f"probe-{os.getpid()}")
    probe.close()
    if probe.mechanism == "none":
        pytest.skip("root without a writable pids cgroup: nothing can cap processes here")
    code = ("import threading, time\nfor _ in range(200):\n"
            "    threading.Thread(target=time.sleep, args=(20,), daemon=True).start()\n")
    started = time.monotonic()
    result = executor(max_processes=60).run(request(code, inputs, timeout=30, check_submission=False))

    assert result.status == Status.PROCESSES and "max_processes" in result.error_tail
    assert time.monotonic() - started < 15  # refused at once, not left to the timeout


def test_a_script_that_prints_no_score_is_no_score(inputs, executor):
    code = """\
        import pandas as pd
        pd.read_csv("input/sample_submission.csv").to_csv("submission.csv", index=False)
    """
    result = executor().run(request(code, inputs))

    assert result.status == Status.NO_SCORE
    assert "Final Validation Performance" in result.message


BAD_SUBMISSIONS = {
    "wrong columns": ('sub = sub.rename(columns={"species": "label"})',
                      "submission.csv has columns ['id', 'label'], expected ['id', 'species']"),
    "wrong row count": ("sub = sub.iloc[:-1]", "submission.csv has 29 rows, expected 30"),
    "missing values": ('sub.loc[3, "species"] = None', "submission.csv has missing values in ['species']"),
}


@pytest.mark.parametrize("case", BAD_SUBMISSIONS)
def test_a_submission_unlike_the_sample_is_invalid_and_says_why(case, inputs, executor):
    spoil, problem = BAD_SUBMISSIONS[case]
    code = f"""\
        import pandas as pd
        sub = pd.read_csv("input/sample_submission.csv")
        {spoil}
        sub.to_csv("submission.csv", index=False)
        print("Final Validation Performance: 0.9")
    """
    result = executor().run(request(code, inputs))

    assert result.status == Status.INVALID_SUBMISSION
    assert problem in result.message
    assert result.reported_score == 0.9  # the score is kept; the submission is what is wrong


# --- cache -----------------------------------------------------------------------------------------------------

STAMPED = """\
    import time
    time.sleep(1)
    print("finished at", time.time_ns())
    print("Final Validation Performance: 0.5")
"""


def test_identical_code_and_data_is_served_from_the_cache_without_running_again(inputs, executor):
    run = executor()
    first = run.run(request(STAMPED, inputs, check_submission=False))
    stdout_file = first.workdir / "stdout.txt"
    written = stdout_file.stat().st_mtime_ns

    started = time.monotonic()
    second = run.run(request(STAMPED, inputs, check_submission=False))

    assert time.monotonic() - started < 0.5  # the script sleeps 1 s: it did not run
    assert (first.cached, second.cached) == (False, True)
    assert second.stdout_tail == first.stdout_tail  # the same "finished at" stamp
    assert stdout_file.stat().st_mtime_ns == written
    assert (second.status, second.reported_score, second.workdir) == (Status.OK, 0.5, first.workdir)


def test_the_cache_survives_a_new_executor_on_the_same_output_folder(inputs, executor):
    first = executor().run(request(STAMPED, inputs, check_submission=False))
    second = executor().run(request(STAMPED, inputs, check_submission=False))

    assert second.cached and second.stdout_tail == first.stdout_tail


def test_a_timeout_is_cached_only_for_the_executor_that_saw_it(inputs, executor):
    # a timeout says how busy the machine was as much as what the script does: a later run tries again
    slow = "import time\ntime.sleep(5)\n"
    first = executor()
    timed_out = first.run(request(slow, inputs, timeout=1, check_submission=False))
    again = first.run(request(slow, inputs, timeout=1, check_submission=False))
    later = executor().run(request(slow, inputs, timeout=1, check_submission=False))

    assert [r.status for r in (timed_out, again, later)] == [Status.TIMEOUT] * 3
    assert [r.cached for r in (timed_out, again, later)] == [False, True, False]


def test_a_finished_script_is_reused_under_another_timeout_and_a_timed_out_one_retried_under_a_longer_one(
        inputs, executor):
    # a resumed run asks again with limits cut to the time left then: what had finished must not run again
    run = executor()
    first = run.run(request(STAMPED, inputs, timeout=60, check_submission=False))
    shorter = run.run(request(STAMPED, inputs, timeout=20, check_submission=False))
    assert shorter.cached and shorter.stdout_tail == first.stdout_tail

    slow = "import time\ntime.sleep(2)\nprint('Final Validation Performance: 1')\n"
    timed_out = run.run(request(slow, inputs, timeout=1, check_submission=False))
    longer = run.run(request(slow, inputs, timeout=10, check_submission=False))
    assert (timed_out.status, longer.status, longer.cached) == (Status.TIMEOUT, Status.OK, False)


def test_a_cache_entry_whose_predictions_changed_after_the_run_is_not_reused(inputs, executor):
    code = """\
        import pandas as pd
        print("finished at", __import__("time").time_ns())
        pd.DataFrame({"id": [1], "y": [0.5]}).to_csv("val_predictions.csv", index=False)
        print("Final Validation Performance: 0.5")
    """
    run = executor()
    first = run.run(request(code, inputs, check_submission=False))
    (first.workdir / "val_predictions.csv").write_text("id,y\n1,0.99\n")  # another script's meddling

    again = executor().run(request(code, inputs, check_submission=False))

    assert not again.cached and again.stdout_tail != first.stdout_tail
    assert (again.workdir / "val_predictions.csv").read_text().strip().endswith("0.5")


def test_changing_one_byte_of_the_data_runs_the_script_again(inputs, executor):
    run = executor()
    first = run.run(request(STAMPED, inputs, check_submission=False))
    train = inputs / "train.csv"
    text = train.read_text()
    train.write_text(text.replace("setosa", "Setosa", 1))  # same size, one byte different

    second = run.run(request(STAMPED, inputs, check_submission=False))

    assert not second.cached
    assert second.stdout_tail != first.stdout_tail
    assert second.cache_key != first.cache_key


def test_with_the_cache_off_every_run_executes(inputs, executor):
    run = executor(cache=False)
    first = run.run(request(STAMPED, inputs, check_submission=False))
    second = run.run(request(STAMPED, inputs, check_submission=False))

    assert not second.cached
    assert second.stdout_tail != first.stdout_tail


# --- parallel runs ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("workers, at_least, below", [(4, 1.0, 3.0), (2, 2.0, 3.9)])
def test_run_many_runs_up_to_workers_scripts_at_once(workers, at_least, below, inputs, executor):
    requests = [request(f"import time\ntime.sleep(1)\nprint('Final Validation Performance: {i}')\n", inputs,
                        check_submission=False) for i in range(4)]

    started = time.monotonic()
    results = executor(workers=workers).run_many(requests)
    wall = time.monotonic() - started

    assert [r.reported_score for r in results] == [0.0, 1.0, 2.0, 3.0]  # results come back in request order
    assert at_least <= wall < below  # serially, four 1 s scripts take at least 4 s


@pytest.mark.parametrize("how", ["run_many", "threads"])
def test_a_run_that_starts_late_in_a_batch_gets_only_what_is_left_before_the_deadline(how, inputs, executor):
    # one worker, two 4 s scripts, 30 s timeouts but a deadline 5 s away: the second starts after 4 s, with 1 s left,
    # whether the batch is one run_many call or two threads (the graph's parallel branches) waiting for the worker
    requests = [request(f"import time\ntime.sleep(4)\nprint('Final Validation Performance: {i}')\n", inputs,
                        timeout=30, check_submission=False, deadline=time.time() + 5) for i in range(2)]
    one_worker = executor(workers=1)

    started = time.monotonic()
    if how == "run_many":
        results = one_worker.run_many(requests)
    else:
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(one_worker.run, requests))
    wall = time.monotonic() - started

    first, second = sorted(results, key=lambda r: r.status is Status.TIMEOUT)
    assert first.ok and first.reported_score is not None
    assert second.status is Status.TIMEOUT
    assert wall < 7.5  # not 8 s: nothing ran past the deadline by more than the kill's grace


# --- cross-validated input folders ----------------------------------------------------------------------------

FOLD_SCRIPT = dedent("""\
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    train = pd.read_csv("input/train.csv")
    valid = pd.read_csv("input/valid.csv")
    test = pd.read_csv("input/test.csv")
    features = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    model = LogisticRegression(max_iter=1000).fit(train[features], train["species"])
    pd.DataFrame({"id": valid["id"], "species": model.predict(valid[features])}).to_csv("val_predictions.csv",
                                                                                      index=False)
    pd.DataFrame({"id": test["id"], "species": model.predict(test[features])}).to_csv("submission.csv", index=False)
    print("Final Validation Performance:", model.score(valid[features], valid["species"]))
""")


@pytest.fixture
def folded(make_competition) -> Path:
    """The iris competition as a cross-validated search folder: folds/<k>/ hold out a third of the search rows
    each, and every fold also predicts the same 20 selection rows."""
    root = make_competition("folded", description=False, answers=False)
    train = pd.read_csv(root / "train.csv")
    selection, search = train.iloc[:20], train.iloc[20:]
    for k in range(3):
        fold = root / "folds" / str(k)
        fold.mkdir(parents=True)
        held = search.iloc[k::3]
        search.drop(held.index).to_csv(fold / "train.csv", index=False)
        pd.concat([held, selection]).to_csv(fold / "valid.csv", index=False)
        for name in ("test.csv", "sample_submission.csv"):
            (fold / name).write_bytes((root / name).read_bytes())
    return root


def test_a_folded_input_runs_once_per_fold_and_merges_each_rows_predictions(folded, executor):
    result = executor(workers=2).run(request(FOLD_SCRIPT, folded))

    assert result.status == Status.OK, result.error_tail
    assert result.folds == 3 and sorted(p.name for p in result.workdir.glob("fold*")) == ["fold0", "fold1", "fold2"]
    folds = [pd.read_csv(result.workdir / f"fold{k}" / "val_predictions.csv") for k in range(3)]
    merged = pd.read_csv(result.val_predictions)
    train = pd.read_csv(folded / "train.csv")
    assert sorted(merged["id"]) == sorted(train["id"])  # each search row once, the selection rows once
    search_ids = train["id"].iloc[20:]
    for k, fold in enumerate(folds):  # a held-out search row keeps the prediction of the fold that held it out
        own = fold[fold["id"].isin(search_ids)]
        pd.testing.assert_frame_equal(merged.set_index("id").loc[own["id"]].reset_index(), own.reset_index(drop=True))
    printed = [float(line.split(":")[1]) for line in (result.workdir / "stdout.txt").read_text().splitlines()
               if line.startswith("Final")]
    assert len(printed) == 3 and result.reported_score == pytest.approx(sum(printed) / 3)
    assert len(pd.read_csv(result.submission)) == len(pd.read_csv(folded / "test.csv"))


def test_the_local_executor_runs_the_folds_in_one_process_so_libraries_are_imported_once(folded, executor):
    code = FOLD_SCRIPT.replace("import pandas as pd", "import pandas as pd\nimport sklearn\n"
                               "sklearn.folds_seen = getattr(sklearn, 'folds_seen', 0) + 1\n"
                               "print('folds seen', sklearn.folds_seen)")
    result = executor(workers=2).run(request(code, folded))

    assert result.status == Status.OK, result.error_tail
    seen = [line for line in (result.workdir / "stdout.txt").read_text().splitlines() if line.startswith("folds seen")]
    assert seen == ["folds seen 1", "folds seen 2", "folds seen 3"]


def test_each_fold_knows_how_many_folds_share_its_run(folded, executor):
    # a script with a time slice of its own (the tune op's Optuna study) splits it over the folds run in turn
    code = FOLD_SCRIPT.replace("import pandas as pd", "import os\nimport pandas as pd\n"
                               "print('folds sharing the run', os.environ.get('MLESTAR_FOLDS'))")
    result = executor(workers=2).run(request(code, folded))

    assert result.status == Status.OK, result.error_tail
    shared = [line for line in (result.workdir / "stdout.txt").read_text().splitlines() if line.startswith("folds")]
    assert shared == ["folds sharing the run 3"] * 3


def test_folds_in_one_process_record_the_start_up_they_paid_once_apart_from_each_folds_fit(folded, executor):
    # A first import that takes 1.5 s and a fit of 0.3 s per fold: a run of its own costs both, so the final
    # full-data run must be estimated from the start-up plus one fold's fit, not from a third of the total.
    code = FOLD_SCRIPT.replace("import pandas as pd", "import pandas as pd\nimport sys, time\n"
                               "if 'slow_import_done' not in sys.modules:\n"
                               "    time.sleep(1.5)\n"
                               "    sys.modules['slow_import_done'] = sys\n"
                               "time.sleep(0.3)")
    run = executor(workers=2)
    result = run.run(request(code, folded))
    alone = run.run(request(code, folded / "folds" / "0"))  # the same script, as a run of its own

    assert result.status == alone.status == Status.OK, result.error_tail
    assert result.startup > 1.5  # the slow import and the libraries' own
    estimate = result.startup + (result.seconds - result.startup) / result.folds
    assert 0.6 * alone.seconds < estimate < 1.6 * alone.seconds, (estimate, alone.seconds)
    assert result.seconds / result.folds < 0.6 * alone.seconds  # what the estimate was before


def test_a_fold_that_fails_fails_the_whole_run_and_says_which_fold(folded, executor):
    code = FOLD_SCRIPT.replace('train = pd.read_csv("input/train.csv")',
                               'train = pd.read_csv("input/train.csv")\nassert len(train) % 3 != 1, "unlucky fold"')
    sizes = [len(pd.read_csv(folded / "folds" / str(k) / "train.csv")) for k in range(3)]
    assert any(n % 3 == 1 for n in sizes) and not all(n % 3 == 1 for n in sizes)  # setup: some folds fail

    result = executor(workers=2).run(request(code, folded))

    assert result.status == Status.ERROR
    assert f"fold {next(k for k, n in enumerate(sizes) if n % 3 == 1) + 1} of 3" in result.error_tail
    assert "unlucky fold" in result.error_tail


# --- isolation -------------------------------------------------------------------------------------------------

PROBE_FILE = """\
    try:
        open({path!r}).read()
        print("readable")
    except OSError as exc:
        print("unreadable:", type(exc).__name__)
"""


@pytest.mark.parametrize("where", ["private answers beside the inputs", "the mlestar source tree"])
def test_with_bwrap_a_script_cannot_read_files_outside_its_folder(where, tmp_path, inputs, executor):
    if where == "private answers beside the inputs":
        secret = tmp_path / "answers.csv"
        secret.write_text("id,species\n1000,setosa\n")
    else:
        secret = Path(core.__file__).resolve().parents[1] / "pyproject.toml"
    result = executor(isolation="bwrap").run(request(PROBE_FILE.format(path=str(secret)), inputs,
                                                     check_submission=False))

    assert secret.is_file()
    assert result.stdout_tail.strip() == "unreadable: FileNotFoundError"


WALK_FOR_SECRETS = """\
    import os

    def below(root, depth):
        for folder, dirs, files in os.walk(root):
            if folder[len(root):].count(os.sep) >= depth:
                dirs[:] = []
            yield from (os.path.join(folder, f) for f in files)

    found = set()
    for start in (os.getcwd(), os.path.realpath("input")):
        for up in range(3):  # the start, its parent, its grandparent: two levels down from each
            root = os.path.abspath(os.path.join(start, *[".."] * up))
            found |= {p for p in below(root, 2) if os.path.basename(p) in ("valid_truth.csv", "answers.csv")}
    print("found:", sorted(found))
    print("Final Validation Performance: 0")
"""


def test_without_isolation_no_relative_walk_from_the_script_or_its_input_reaches_the_truth(tmp_path, inputs, executor):
    # What a run folder used to sit next to: the framework's validation truth, the task's private answers. (Not a
    # sandbox: a script that searches the whole disk finds what its user can read; bubblewrap is the answer to it.)
    (tmp_path / "out" / "data").mkdir(parents=True)
    (tmp_path / "out" / "data" / "valid_truth.csv").write_text("id,species\n1000,setosa\n")
    (tmp_path / "answers.csv").write_text("id,species\n1000,setosa\n")

    result = executor(isolation="none").run(request(WALK_FOR_SECRETS, inputs, check_submission=False))

    assert result.status == Status.OK, result.error_tail
    assert result.stdout_tail.splitlines()[0] == "found: []"
    assert result.workdir.parent == tmp_path / "out" / "runs" and (result.workdir / "stdout.txt").is_file()
    assert not (result.workdir / "input").exists()  # the inputs' copies went with the scratch folder


NON_ROOT_PROBE = """\
import importlib.util, pathlib, subprocess
spec = importlib.util.spec_from_file_location("sandbox", {sandbox!r})
sandbox = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sandbox)
probe = "import os, socket\\n" \\
        "print('uid', os.getuid(), 'sees the host:', os.path.exists({host!r}))\\n" \\
        "try:\\n    socket.create_connection(('127.0.0.1', 22), timeout=2)\\n    print('network: open')\\n" \\
        "except OSError:\\n    print('network: none')\\n"
print("bwrap works:", sandbox.bwrap_works())
cmd = sandbox.isolated_command(["/usr/bin/python3", "-c", probe], pathlib.Path({work!r}), [])
print(subprocess.run(cmd, cwd={work!r}, capture_output=True, text=True).stdout, end="")
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv") or not Path("/usr/bin/python3").is_file(),
                    reason="needs root to become another user (setpriv) and a system python3 that user can run")
def test_bwrap_confines_scripts_for_a_user_without_root_where_user_namespaces_are_allowed():
    # core.sandbox run by uid 65534 (the venv's interpreter may sit in root's home: the system python3 runs it)
    with tempfile.TemporaryDirectory(prefix="mlestar-nonroot-") as work:  # pytest's tmp_path is root's alone
        os.chown(work, 65534, 65534)
        code = NON_ROOT_PROBE.format(sandbox=str(Path(core.__file__).parent / "sandbox.py"), work=work,
                                     host=str(Path(core.__file__).parent))
        run = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3",
                              "-c", code], cwd="/", capture_output=True, text=True, timeout=60)

    assert run.stdout.splitlines() == ["bwrap works: True", "uid 65534 sees the host: False", "network: none"], \
        run.stdout + run.stderr


def test_with_bwrap_the_input_files_are_readable_but_read_only(inputs, executor):
    code = """\
        print("train rows:", sum(1 for _ in open("input/train.csv")) - 1)
        try:
            open("input/train.csv", "a").write("1,2,3")
            print("input writable")
        except OSError as exc:
            print("input read-only:", exc.strerror)
    """
    result = executor(isolation="bwrap").run(request(code, inputs, check_submission=False))

    assert result.stdout_tail.splitlines() == ["train rows: 120", "input read-only: Read-only file system"]
    assert len(pd.read_csv(inputs / "train.csv")) == 120


@pytest.mark.parametrize("isolation", ["none", "bwrap"])
def test_secrets_in_the_parent_environment_are_not_visible_to_a_script(isolation, inputs, executor, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-for-scripts")
    monkeypatch.setenv("HF_TOKEN", "hf_test_not_for_scripts")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-test-not-for-scripts")
    code = """\
        import os
        for name in ("OPENAI_API_KEY", "HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "ALLOWED_BY_USER"):
            print(name, "=", os.environ.get(name, "(unset)"))
    """
    result = executor(isolation=isolation, env={"ALLOWED_BY_USER": "yes"}).run(
        request(code, inputs, check_submission=False))

    assert result.stdout_tail.splitlines() == ["OPENAI_API_KEY = (unset)", "HF_TOKEN = (unset)",
                                               "AWS_SECRET_ACCESS_KEY = (unset)", "ALLOWED_BY_USER = yes"]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_script_gets_its_share_of_the_cores_in_every_library_that_picks_a_thread_count(workers, inputs, executor):
    # LightGBM's default n_jobs asks joblib, not OMP_NUM_THREADS: unbounded, two parallel scripts each spun one
    # OpenMP thread per core and a 1 s fit took 60 s.
    code = """\
        import os, joblib
        from lightgbm import LGBMRegressor
        print("omp", os.environ["OMP_NUM_THREADS"])
        print("joblib", joblib.cpu_count(), joblib.cpu_count(only_physical_cores=True))
        print("lightgbm", LGBMRegressor()._process_n_jobs(None), LGBMRegressor()._process_n_jobs(-1))
    """
    result = executor(workers=workers).run(request(code, inputs, check_submission=False))

    share = max(1, (os.cpu_count() or 1) // workers)
    assert result.stdout_tail.splitlines() == [f"omp {share}", f"joblib {share} {share}", f"lightgbm {share} {share}"]
    assert "physical cores" not in result.stderr_tail  # joblib could read the CPU topology, even inside bwrap


CONNECT = """\
    import socket
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
        print("connected")
    except OSError as exc:
        print("no network:", type(exc).__name__)
"""


@pytest.fixture
def listening_port():
    """A TCP port on 127.0.0.1 that accepts connections for the length of the test."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def test_with_bwrap_a_script_has_no_network(inputs, executor, listening_port):
    result = executor(isolation="bwrap").run(request(CONNECT.format(port=listening_port), inputs,
                                                     check_submission=False))

    assert result.stdout_tail.startswith("no network:")


def test_without_isolation_the_same_connection_succeeds_so_the_check_above_means_something(
        inputs, executor, listening_port):
    result = executor(isolation="none").run(request(CONNECT.format(port=listening_port), inputs,
                                                    check_submission=False))

    assert result.stdout_tail.strip() == "connected"


def test_stdout_beyond_output_bytes_is_dropped_and_the_drop_noted(inputs, executor):
    code = """\
        import sys
        print("Final Validation Performance: 0.5")
        sys.stdout.write("x" * 5_000_000)
    """
    result = executor(output_bytes=100_000).run(request(code, inputs, check_submission=False))

    kept = (result.workdir / "stdout.txt").read_text()
    printed = len("Final Validation Performance: 0.5\n") + 5_000_000
    assert kept.startswith("Final Validation Performance: 0.5\n")
    assert kept.endswith(f"\n[mlestar: {printed - 100_000} more bytes dropped]\n")
    assert len(kept.split("\n[mlestar:")[0]) == 100_000
    assert (result.status, result.reported_score) == (Status.OK, 0.5)


def test_the_score_printed_after_a_long_output_is_still_read(inputs, executor):
    code = """\
        import sys
        sys.stdout.write("x" * 3_000_000 + "\\n")
        print("Final Validation Performance: 0.75")
    """
    result = executor(output_bytes=100_000).run(request(code, inputs, check_submission=False))
    assert (result.status, result.reported_score) == (Status.OK, 0.75)
    assert result.stdout_tail.rstrip().endswith("Final Validation Performance: 0.75")


def test_an_unknown_isolation_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="isolation must be auto, bwrap or none"):
        LocalExecutor(ExecutorOptions(isolation="docker"), out_dir=tmp_path)


# --- GPUs -------------------------------------------------------------------------------------------------------

SHOW_GPU = "import os; print('visible GPUs:', repr(os.environ.get('CUDA_VISIBLE_DEVICES')))"


@pytest.mark.parametrize("isolation", ["auto", "none"])
def test_a_script_sees_no_gpu_unless_the_executor_allows_one_and_then_only_the_one_it_holds(isolation, inputs,
                                                                                            executor):
    plain = executor(isolation=isolation, cache=False).run(request(SHOW_GPU, inputs))
    assert "visible GPUs: ''" in plain.stdout_tail
    allowed = executor(isolation=isolation, cache=False, gpus=[1, 3], workers=4)
    held = [r.stdout_tail for r in allowed.run_many([request(SHOW_GPU + f"  # {k}", inputs) for k in range(4)])]
    assert {h.split("visible GPUs: ")[1].strip() for h in held} == {"'1'", "'3'"}  # each run one GPU, both used


def test_a_gpu_runs_device_nodes_reach_the_sandboxs_command_line(tmp_path):
    # no GPU here: a folder standing in for /dev with the nodes a CUDA host has (named as such, not a mock of CUDA)
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "null"):
        (dev / name).touch()
    devices = sandbox.gpu_devices(dev)
    assert devices == [str(dev / n) for n in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm")]
    command = sandbox.isolated_command(["python", "x.py"], tmp_path, [], devices=devices)
    for device in devices:
        at = command.index(device)
        assert command[at - 1] == "--dev-bind" and command[at + 1] == device
    assert "--dev-bind" not in sandbox.isolated_command(["python", "x.py"], tmp_path, [])


def test_gpu_indices_that_cannot_be_used_are_refused_when_the_options_are_read():
    for bad in ([-1], [0, 0], "0", [True]):
        with pytest.raises(ValueError, match="gpus must list distinct GPU indices"):
            ExecutorOptions(gpus=bad)
