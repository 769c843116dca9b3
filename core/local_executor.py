"""The built-in executor: each script in its own process group on this machine, confined by ``core.sandbox``."""

from __future__ import annotations

import os
import queue
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core import sandbox
from core.local_llm import cache_root
from core.executor import SCRIPT_NAME, Executor, ExecutorOptions, RunRequest, RunResult, Status, parse_score

PROCESS_SIGNS = ("can't start new thread", "fork: Resource temporarily unavailable",
                 "BlockingIOError: [Errno 11] Resource temporarily unavailable")
OOM_SIGNS = ("MemoryError", "std::bad_alloc", "Cannot allocate memory", "Unable to allocate", "out of memory",
             "OutOfMemoryError")


class LocalExecutor(Executor):
    def __init__(self, options: ExecutorOptions, *, threads: int | None = None, **kwargs):
        """``threads``: the cores each script may use (default: this machine's ÷ ``workers``); an executor that
        runs this one on a machine of a cluster passes what its scheduler granted."""
        super().__init__(options, **kwargs)
        mode = options.isolation  # one of auto, bwrap, none (ExecutorOptions checks)
        has_bwrap = sandbox.bwrap_works()
        if mode == "bwrap" and not has_bwrap:
            raise ValueError("isolation 'bwrap' asked for, but bubblewrap is missing or cannot create namespaces "
                             "here; install bubblewrap or set executor.options.isolation: none")
        self.isolated = has_bwrap and mode != "none"
        self.isolation = "bwrap" if self.isolated else "none"  # the runner says so once, or refuses foreign code
        self.threads = threads or max(1, (os.cpu_count() or 1) // max(1, options.workers))
        self._gpus: queue.Queue[int] = queue.Queue()  # free GPUs: a run holds one while it runs
        for index in options.gpus:
            self._gpus.put(index)

    def execute(self, request: RunRequest, workdir: Path) -> RunResult:
        if workdir.exists():
            shutil.rmtree(workdir)  # a run killed half-way left this; start it clean
        workdir.mkdir(parents=True)
        with self._site(workdir) as site:
            (site / "tmp").mkdir()
            (site / SCRIPT_NAME).write_text(request.code)
            run = self._spawn([sys.executable, SCRIPT_NAME], site, [(Path(request.input_dir), site / "input")],
                              request.timeout)
        result = self._result(run, workdir, request.timeout, run.stdout_tail, run.stderr_tail, run.seconds)
        result.reported_score = parse_score(run.stdout_text)  # the score line may sit before a long output's tail
        return result

    @contextmanager
    def _site(self, workdir: Path) -> Iterator[Path]:
        """Where a run's files are made. Under bubblewrap, the run's own folder: the script sees nothing else.
        Without it, a scratch folder outside the output folder, with copies of its inputs: no relative path from
        the script's folder, or from its input's, leads to the framework's validation truth, the task's private
        files or the other runs; what the run wrote is moved into its folder afterwards."""
        if self.isolated:
            yield workdir
            return
        # in mlestar's own cache folder, not the shared temp folder: near it, only other runs' scratch folders
        base = cache_root() / "scratch"
        try:
            base.mkdir(parents=True, exist_ok=True)
        except OSError:  # a home folder it cannot write to
            base = Path(tempfile.gettempdir())
        site = Path(tempfile.mkdtemp(prefix="mlestar-run-", dir=base))
        try:
            yield site
            for entry in site.iterdir():
                shutil.move(str(entry), str(workdir / entry.name))
        finally:
            shutil.rmtree(site, ignore_errors=True)

    def execute_folds(self, request: RunRequest, workdir: Path, folds: list[Path]) -> list[RunResult]:
        """All folds in one process, one after another (``FOLD_RUNNER``): the libraries a script imports, which
        on small data take longer than its fits, are imported once. The request's timeout bounds all of them, so
        a run never outlasts the time the search gave it."""
        names = [f"fold{k}" for k in range(len(folds))]
        dirs = [workdir / name for name in names]
        with self._slots, self._site(workdir) as site:
            timeout = self.started(request).timeout
            for name in names:
                (site / name / "tmp").mkdir(parents=True)
                (site / name / SCRIPT_NAME).write_text(request.code)
            (site / FOLD_RUNNER_NAME).write_text(FOLD_RUNNER)
            (site / "tmp").mkdir(exist_ok=True)
            run = self._spawn([sys.executable, FOLD_RUNNER_NAME, *(str(site / n) for n in names)], site,
                              [(Path(f), site / name / "input") for f, name in zip(folds, names)], timeout)
        (outs, starts), (errs, _) = _by_fold(run.stdout_text, len(folds)), _by_fold(run.stderr_tail, len(folds))
        reached = max((k for k in range(len(folds)) if outs[k] is not None or errs[k] is not None), default=0)
        timed = _fold_seconds(starts, run.began, run.began + run.seconds)
        startup, each = timed if timed else (0.0, [run.seconds / len(folds)] * len(folds))
        results = []
        for k, d in enumerate(dirs):
            if k < reached or (k == reached and run.returncode == 0 and not run.timed_out):
                # the start-up is paid once, by fold 1: a run of its own pays it again (see RunResult.startup)
                results.append(RunResult(status=Status.OK, seconds=each[k] + (startup if k == 0 else 0.0),
                                         workdir=d, startup=startup if k == 0 else 0.0,
                                         stdout_tail=(outs[k] or "")[-4000:], stderr_tail=(errs[k] or "")[-4000:],
                                         returncode=0, reported_score=parse_score(outs[k] or "")))
            elif k == reached:  # the fold that failed (or was running when the time ran out)
                results.append(self._result(run, d, timeout, outs[k] or "", errs[k] or run.stderr_tail, run.seconds))
            else:
                results.append(RunResult(status=Status.ERROR, seconds=0.0, workdir=d,
                                         message=f"not run: fold {reached + 1} failed first"))
        return results

    def _spawn(self, cmd: list[str], workdir: Path, inputs: list[tuple[Path, Path]], timeout: float) -> "_Run":
        """Run ``cmd`` in ``workdir`` (its inputs read-only at their mount points), confined, within ``timeout``,
        holding one of the allowed GPUs while it runs (none allowed: it sees none)."""
        gpu = self._gpus.get() if self.options.gpus else None
        try:
            return self._spawn_on(cmd, workdir, inputs, timeout, gpu)
        finally:
            if gpu is not None:
                self._gpus.put(gpu)

    def _spawn_on(self, cmd: list[str], workdir: Path, inputs: list[tuple[Path, Path]], timeout: float,
                  gpu: int | None) -> "_Run":
        if self.isolated:
            for _, mount in inputs:
                mount.mkdir()
            cmd = sandbox.isolated_command(cmd, workdir, [(src.resolve(), mount) for src, mount in inputs],
                                           devices=sandbox.gpu_devices() if gpu is not None else [])
        else:  # copies (hard links where it can): a link to the data folder would name the path to the truth
            for src, mount in inputs:
                shutil.copytree(src.resolve(), mount, copy_function=_link_or_copy)
        given = sandbox.folder_bytes(workdir)  # the inputs' copies are not what the run wrote
        mark = f"{os.getpid()}-{workdir.name}-{time.monotonic_ns()}"
        # CUDA sees only the GPU this run holds, or none: unisolated, every host GPU would be visible otherwise
        visible = {"CUDA_VISIBLE_DEVICES": "" if gpu is None else str(gpu)}
        env = sandbox.minimal_env(workdir, self.threads, {**visible, **self.options.env}, run=mark)
        cap_processes = sandbox.ProcessCap(self.options.max_processes, mark) if self.options.max_processes else None
        cmd, preexec = sandbox.limited_command(cmd, self.options.memory_mb, self.options.disk_mb, cap_processes)
        started, began = time.monotonic(), time.time()
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, preexec_fn=preexec)
        readers = [_CappedCopy(proc.stdout, workdir / "stdout.txt", self.options.output_bytes),
                   _CappedCopy(proc.stderr, workdir / "stderr.txt", self.options.output_bytes)]
        timed_out = over_disk = False
        cap = self.options.disk_mb * 1024 * 1024 if self.options.disk_mb else None
        try:
            while True:  # wait, looking at the folder's size now and then
                left = started + timeout - time.monotonic()
                if left <= 0:
                    timed_out = True
                    break
                if _exited(proc, min(DISK_POLL, left)):
                    break
                if cap is not None and sandbox.folder_bytes(workdir) - given > cap:
                    over_disk = True
                    break
        finally:
            _kill_group(proc)  # also reaps whatever the script left running in the background
            proc.wait()
        too_many = cap_processes is not None and cap_processes.hit()
        if cap_processes is not None:
            cap_processes.close()  # kills what left the process group too, before its files are looked at
        if not self.isolated and (cap_processes is None or cap_processes.group is None):
            sandbox.kill_marked(mark)  # no cgroup to find what left the process group: its environment's mark
        written = sandbox.folder_bytes(workdir) - given
        if cap is not None and (over_disk or proc.returncode == -signal.SIGXFSZ or written > cap):
            over_disk = True
            _clear_outputs(workdir)
        if not self.isolated:
            for _, mount in inputs:
                shutil.rmtree(mount, ignore_errors=True)
        for r in readers:
            # a process that left the group (setsid) may still hold the pipe; keep what arrived and move on
            r.join(timeout=5)
        stdout = readers[0].tail()
        return _Run(returncode=proc.returncode, timed_out=timed_out, over_disk=over_disk, too_many=too_many,
                    seconds=time.monotonic() - started, began=began,
                    stdout_text=readers[0].text() + "\n" + stdout, stdout_tail=stdout, stderr_tail=readers[1].tail())

    def _result(self, run: "_Run", workdir: Path, timeout: float, stdout: str, stderr: str,
                seconds: float) -> RunResult:
        result = RunResult(status=Status.OK, seconds=seconds, workdir=workdir, stdout_tail=stdout[-4000:],
                           stderr_tail=stderr[-4000:], returncode=run.returncode, reported_score=parse_score(stdout))
        if run.over_disk:
            result.status = Status.DISK
            result.message = (f"stopped: wrote more than the {self.options.disk_mb} MB its folder may hold "
                              f"(executor option disk_mb); what it wrote was deleted")
        elif run.timed_out:
            result.status, result.message = Status.TIMEOUT, f"killed after the {timeout:g} s timeout"
        elif run.returncode != 0 and (run.too_many or any(s in stderr for s in PROCESS_SIGNS)):
            result.status = Status.PROCESSES
            result.message = (f"refused more than {self.options.max_processes} processes and threads at once "
                              f"(executor option max_processes): " + _last_line(stderr))
        elif run.returncode != 0:
            oom = any(s in stderr for s in OOM_SIGNS) or run.returncode == -signal.SIGKILL
            result.status = Status.OOM if oom else Status.ERROR
            if oom:
                result.message = f"out of memory (cap {self.options.memory_mb} MB): " + _last_line(stderr)
        return result


@dataclass
class _Run:
    returncode: int | None
    timed_out: bool
    over_disk: bool
    too_many: bool  # the process cap refused a fork or thread (known where a cgroup holds the run)
    seconds: float
    began: float  # wall-clock time the process started
    stdout_text: str  # what was kept of stdout, with its tail
    stdout_tail: str
    stderr_tail: str


FOLD_RUNNER_NAME = "run_folds.py"
FOLD_MARK = "=== mlestar: fold {} at {} ==="  # the fold and the wall-clock time it started
FOLD_LINE = re.compile(r"^=== mlestar: fold (\d+) at ([\d.]+) ===$")
# Runs solution.py in each fold folder in turn, in this one process; a marker line on stdout and stderr opens each
# fold's output. A fold that raises ends the process with its traceback, as a script of its own would. FOLDS_ENV
# tells each fold how many share the run, so a script with a time slice of its own (an Optuna study) can split it.
FOLDS_ENV = "MLESTAR_FOLDS"
FOLD_RUNNER = f'''import gc
import os
import runpy
import sys
import time

os.environ["{FOLDS_ENV}"] = str(len(sys.argv) - 1)
for k, folder in enumerate(sys.argv[1:]):
    os.chdir(folder)
    started = "%.3f" % time.time()
    for stream in (sys.stdout, sys.stderr):
        print("{FOLD_MARK}".format(k, started), file=stream, flush=True)
    try:
        runpy.run_path("solution.py", run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise
    gc.collect()
'''


def _by_fold(text: str, folds: int) -> tuple[list[str | None], list[float | None]]:
    """Each fold's part of a fold runner's output (None: the output shows no marker for that fold), and the
    wall-clock time each fold started."""
    parts: list[str | None] = [None] * folds
    starts: list[float | None] = [None] * folds
    current = None
    for line in text.splitlines(keepends=True):
        mark = FOLD_LINE.match(line.strip())
        if mark and int(mark[1]) < folds:
            current = int(mark[1])
            parts[current], starts[current] = "", float(mark[2])
        elif current is not None:
            parts[current] += line
    return parts, starts


def _fold_seconds(starts: list[float | None], began: float, ended: float) -> tuple[float, list[float]] | None:
    """The start-up and each fold's seconds, from when each fold began (None when one never began or the clocks
    disagree). The start-up is what came before fold 1 plus what fold 1 took beyond the others' mean: its script
    imported the libraries, the later folds found them loaded."""
    if any(t is None for t in starts) or not began <= starts[0] <= ended:
        return None
    bounds = [*starts, ended]
    each = [max(0.0, bounds[k + 1] - bounds[k]) for k in range(len(starts))]
    first_extra = max(0.0, each[0] - sum(each[1:]) / len(each[1:])) if len(each) > 1 else 0.0
    each[0] -= first_extra
    return starts[0] - began + first_extra, each


DISK_POLL = 0.5  # seconds between looks at a running script's folder size
KEPT = {SCRIPT_NAME, "stdout.txt", "stderr.txt"}


def _clear_outputs(workdir: Path) -> None:
    """Delete what a run over its disk cap wrote (its script and logs stay, to show what happened)."""
    for entry in workdir.iterdir():
        if entry.name in KEPT or entry.name == "input" or entry.is_symlink():
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _link_or_copy(src: str, dest: str) -> None:
    if os.path.realpath(src) != os.path.abspath(src):
        # reached through a link to the task's own files (an image folder: see core.assets): a hard link would let
        # the script overwrite the user's data, so it gets a copy
        shutil.copy2(src, dest)
        return
    try:
        os.link(src, dest)
    except OSError:  # another file system
        shutil.copy2(src, dest)


def _exited(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait up to ``timeout`` s for ``proc`` to end; True when it did. Popen.wait(timeout) polls with sleeps of up
    to 50 ms, a lag after every script; a pidfd (Linux 5.3+) wakes the moment the process ends."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd here, or the process is already reaped
        try:
            proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    return bool(ready) and proc.poll() is not None


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


class _CappedCopy:
    """Copies a pipe to a file until ``cap`` bytes, then keeps draining it (so the child never blocks) and notes
    how much was dropped."""

    TAIL = 65536  # the end of a long output is kept too: the score line comes last

    def __init__(self, pipe, path: Path, cap: int):
        self.pipe, self.path, self.cap = pipe, path, cap
        self.kept = bytearray()
        self.last = bytearray()
        self.dropped = 0
        self.thread = threading.Thread(target=self._pump, daemon=True)  # daemon: an escaped child cannot block exit
        self.thread.start()

    def _pump(self) -> None:
        with self.path.open("wb") as out:
            for chunk in iter(lambda: self.pipe.read1(65536), b""):
                room = self.cap - len(self.kept)
                keep = chunk[:max(room, 0)]
                self.kept += keep
                out.write(keep)
                self.dropped += len(chunk) - len(keep)
                self.last = (self.last + chunk)[-self.TAIL:]
            if self.dropped:
                out.write(f"\n[mlestar: {self.dropped} more bytes dropped]\n".encode())
        self.pipe.close()

    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)

    def text(self) -> str:
        return self.kept.decode(errors="replace")

    def tail(self, n: int = 8000) -> str:
        return self.last[-n:].decode(errors="replace")
