"""The built-in executor: each script in its own process group on this machine, confined by ``core.sandbox``."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from loguru import logger

from core import sandbox
from core.executor import SCRIPT_NAME, Executor, ExecutorOptions, RunRequest, RunResult, Status, parse_score

OOM_SIGNS = ("MemoryError", "std::bad_alloc", "Cannot allocate memory", "Unable to allocate", "out of memory",
             "OutOfMemoryError")


class LocalExecutor(Executor):
    def __init__(self, options: ExecutorOptions, **kwargs):
        super().__init__(options, **kwargs)
        mode = options.isolation
        if mode not in ("auto", "bwrap", "none"):
            raise ValueError(f"isolation must be auto, bwrap or none, not {mode!r}")
        has_bwrap = sandbox.bwrap_works()
        if mode == "bwrap" and not has_bwrap:
            raise ValueError("isolation 'bwrap' asked for, but bubblewrap is missing or cannot create namespaces "
                             "here; install bubblewrap or set executor.options.isolation: none")
        self.isolated = has_bwrap and mode != "none"
        if mode == "auto" and not has_bwrap:
            logger.warning("bubblewrap not available: scripts run unisolated (own folder, clean environment, limits)")
        self.threads = max(1, (os.cpu_count() or 1) // max(1, options.workers))

    def execute(self, request: RunRequest, workdir: Path) -> RunResult:
        if workdir.exists():
            shutil.rmtree(workdir)  # a run killed half-way left this; start it clean
        (workdir / "tmp").mkdir(parents=True)
        (workdir / SCRIPT_NAME).write_text(request.code)
        cmd = [sys.executable, SCRIPT_NAME]
        if self.isolated:
            (workdir / "input").mkdir()
            cmd = sandbox.isolated_command(cmd, workdir, Path(request.input_dir).resolve())
        else:
            (workdir / "input").symlink_to(Path(request.input_dir).resolve(), target_is_directory=True)
        env = sandbox.minimal_env(workdir, self.threads, self.options.env)
        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True,
                                preexec_fn=sandbox.limit_resources(self.options.memory_mb))
        readers = [_CappedCopy(proc.stdout, workdir / "stdout.txt", self.options.output_bytes),
                   _CappedCopy(proc.stderr, workdir / "stderr.txt", self.options.output_bytes)]
        timed_out = False
        try:
            proc.wait(timeout=request.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _kill_group(proc)  # also reaps whatever the script left running in the background
            proc.wait()
        for r in readers:
            # a process that left the group (setsid) may still hold the pipe; keep what arrived and move on
            r.join(timeout=5)
        seconds = time.monotonic() - started
        stdout, stderr = readers[0].tail(), readers[1].tail()
        result = RunResult(status=Status.OK, seconds=seconds, workdir=workdir, stdout_tail=stdout[-4000:],
                           stderr_tail=stderr[-4000:], returncode=proc.returncode,
                           reported_score=parse_score(readers[0].text() + "\n" + stdout))
        if timed_out:
            result.status, result.message = Status.TIMEOUT, f"killed after the {request.timeout:g} s timeout"
        elif proc.returncode != 0:
            oom = any(s in stderr for s in OOM_SIGNS) or proc.returncode == -signal.SIGKILL
            result.status = Status.OOM if oom else Status.ERROR
            if oom:
                result.message = f"out of memory (cap {self.options.memory_mb} MB): " + _last_line(stderr)
        return result


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
