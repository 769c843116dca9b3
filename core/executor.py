"""Running candidate scripts: the request and result types, the executor interface, and the shared machinery
(content-hash cache, parallel workers, recording each attempt in the run store) that every executor plugin reuses.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Iterable

import pandas as pd
from loguru import logger

from core.assets import stamp as asset_stamp
from core.files import write_atomic
from core.folds import fold_dirs, merge_predictions
from core.store import RunStore
from core.submission import submission_problems

SCORE_LINE = re.compile(r"Final Validation Performance\s*:\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)",
                        re.IGNORECASE)
SCRIPT_NAME = "solution.py"
VAL_PREDICTIONS = "val_predictions.csv"
SUBMISSION = "submission.csv"


class Status(str, Enum):
    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    OOM = "out_of_memory"
    DISK = "out_of_disk"  # wrote more than the executor's disk_mb into its folder
    PROCESSES = "too_many_processes"  # asked for more processes and threads than max_processes
    NO_SCORE = "no_score"
    INVALID_SUBMISSION = "invalid_submission"
    INVALID_PREDICTIONS = "invalid_predictions"  # set by the framework's scorer, never by an executor


@dataclass
class RunRequest:
    """One script to run against one prepared input folder (the task's public files)."""

    code: str
    input_dir: Path
    timeout: float
    node: str = ""
    parent_id: int | None = None
    plan: str = ""
    fidelity: str = "search"
    check_submission: bool = True
    id_column: str | None = None
    info: dict | None = None  # recorded with the attempt (e.g. a refinement step's state); not part of the cache key
    # wall-clock time (time.time()) no run may last past: a request of a batch that starts late, when a worker
    # frees, gets what is left of it (at least a second) instead of its whole timeout
    deadline: float | None = None


@dataclass
class RunResult:
    status: Status
    seconds: float
    workdir: Path
    reported_score: float | None = None
    submission: Path | None = None
    val_predictions: Path | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""
    message: str = ""
    returncode: int | None = None
    cache_key: str = ""
    cached: bool = False
    attempt_id: int | None = None
    folds: int = 1  # runs behind this result: one per fold of a cross-validated input folder (seconds are summed)
    # seconds before the first fold's script began, when one process ran every fold (imports paid once): a run of
    # its own pays them again; 0 when each fold paid its own
    startup: float = 0.0
    timeout: float | None = None  # the limit it ran under (a timed-out result is retried with a longer one)
    digests: dict[str, str] = field(default_factory=dict)  # sha256 of its script and outputs, checked before reuse

    @property
    def ok(self) -> bool:
        return self.status == Status.OK

    @property
    def error_tail(self) -> str:
        return self.message or self.stderr_tail[-2000:]

    def to_json(self) -> str:
        d = asdict(self)
        d.update(status=self.status.value, workdir=str(self.workdir),
                 submission=str(self.submission) if self.submission else None,
                 val_predictions=str(self.val_predictions) if self.val_predictions else None)
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> "RunResult":
        d = json.loads(text)
        d["status"] = Status(d["status"])
        for k in ("workdir", "submission", "val_predictions"):
            d[k] = Path(d[k]) if d[k] else None
        return cls(**d)


@dataclass
class ExecutorOptions:
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    memory_mb: int | None = 8192
    disk_mb: int | None = 2048  # most a run may write into its folder (and the largest file it may write)
    max_processes: int | None = 512  # processes and threads a run may have at once (see core.sandbox.ProcessCap)
    output_bytes: int = 2_000_000
    isolation: str = "auto"  # auto | bwrap | none
    cache: bool = True
    env: dict[str, str] = field(default_factory=dict)  # extra variables the user allows scripts to see
    # GPU indices scripts may use, one GPU per running script (so at most len(gpus) run at once); empty: none
    gpus: list[int] = field(default_factory=list)

    @classmethod
    def from_dict(cls, options: dict) -> "ExecutorOptions":
        known = set(cls.__dataclass_fields__)
        unknown = set(options) - known
        if unknown:
            raise ValueError(f"unknown executor options {sorted(unknown)}; known: {sorted(known)}")
        return cls(**options)

    def __post_init__(self) -> None:
        """Values a run could not use are refused when the options are read (at validate), not mid-run."""
        def whole(name: str, value, optional: bool) -> None:
            if value is None and optional:
                return
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"executor option {name} must be a whole number ≥ 1{' or null' if optional else ''}, "
                                 f"not {value!r}")
        whole("workers", self.workers, False)
        whole("output_bytes", self.output_bytes, False)
        for name in ("memory_mb", "disk_mb", "max_processes"):
            whole(name, getattr(self, name), True)
        if self.isolation not in ("auto", "bwrap", "none"):
            raise ValueError(f"executor option isolation must be auto, bwrap or none, not {self.isolation!r}")
        if not isinstance(self.cache, bool):
            raise ValueError(f"executor option cache must be true or false, not {self.cache!r}")
        if not isinstance(self.env, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                     for k, v in self.env.items()):
            raise ValueError(f"executor option env must map names to strings, not {self.env!r}")
        if not isinstance(self.gpus, list) or not all(isinstance(g, int) and not isinstance(g, bool) and g >= 0
                                                      for g in self.gpus) or len(set(self.gpus)) < len(self.gpus):
            raise ValueError(f"executor option gpus must list distinct GPU indices (e.g. [0, 1]), not {self.gpus!r}")


# Outcomes that say as much about the machine's load at the time as about the script: a later executor (a new run, a
# resumed one, a training stage) runs such a script again instead of serving them from the cache.
LOAD_DEPENDENT = frozenset({Status.TIMEOUT, Status.OOM})


class Executor:
    """Base of every executor plugin: subclasses implement ``execute`` (run one script in ``workdir``); this class
    adds the content-hash cache, parallelism, cross-validated input folders (one run per fold, predictions merged:
    see ``core.folds``) and the run-store record of each attempt."""

    # what confines the scripts, for the report and the fail-closed check: "none" means nothing beyond the process
    # limits; an executor plugin names its own confinement
    isolation: str = "unknown"

    def __init__(self, options: ExecutorOptions, *, out_dir: Path, store: RunStore | None = None,
                 run_id: str = ""):
        self.options = options
        self.runs_dir = Path(out_dir) / "runs"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.store = store
        self.run_id = run_id
        self._key_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._fingerprints: dict[tuple, str] = {}
        self._asset_stamps: dict[Path, str] = {}
        self._seen_here: set[str] = set()  # keys this executor ran itself (see LOAD_DEPENDENT)
        # at most ``workers`` scripts at once, however requests and their folds are spread over threads
        self._slots = threading.BoundedSemaphore(max(1, options.workers))

    def execute(self, request: RunRequest, workdir: Path) -> RunResult:  # pragma: no cover - interface
        raise NotImplementedError

    # public API
    def run(self, request: RunRequest) -> RunResult:
        request = self.started(request)  # the limit a cached timeout is compared with
        key = self.cache_key(request)
        workdir = self.runs_dir / key[:20]
        started = time.time()
        with self._lock_for(key):
            result = self._reusable(request, key, workdir)
            if result is not None:
                result.cached = True
            else:
                folds = fold_dirs(request.input_dir)
                result = self._run_folds(request, workdir, folds) if folds else self._execute(request, workdir)
                result.cache_key, result.timeout = key, request.timeout
                self._check_outputs(request, result)
                result.digests = _digests(result.workdir)
                write_atomic(workdir / "result.json", result.to_json())
                self._seen_here.add(key)
        if self.store is not None:
            result.attempt_id = self.store.add_attempt(
                run_id=self.run_id, node=request.node, parent_id=request.parent_id, plan=request.plan,
                code=request.code, code_hash=_sha(request.code), cache_key=key, cached=int(result.cached),
                fidelity=request.fidelity, status=result.status.value, reported_score=result.reported_score,
                error_tail=result.error_tail if not result.ok else None, seconds=result.seconds,
                started_at=started, finished_at=time.time(), workdir=str(result.workdir), info=request.info)
        return result

    def _reusable(self, request: RunRequest, key: str, workdir: Path) -> RunResult | None:
        """The cached result of this request, unless it cannot stand for a run now: a timeout (or out-of-memory)
        from another process, on a machine as busy as it was then, or under a shorter limit than this request's;
        or a script or output that changed since it was recorded (a torn write, another script's meddling)."""
        done = workdir / "result.json"
        if not self.options.cache or not done.is_file():
            return None
        try:
            result = RunResult.from_json(done.read_text())
        except (ValueError, TypeError, KeyError):
            logger.warning(f"cache entry {workdir.name}: unreadable result.json; running the script again")
            return None
        if result.status in LOAD_DEPENDENT and (key not in self._seen_here or
                                                request.timeout > (result.timeout or 0.0)):
            return None
        if result.digests != _digests(result.workdir):
            logger.warning(f"cache entry {workdir.name}: its files changed since the run; running the script again")
            return None
        return result

    def run_many(self, requests: Iterable[RunRequest]) -> list[RunResult]:
        requests = list(requests)
        if len(requests) <= 1 or self.options.workers <= 1:
            return [self.run(r) for r in requests]
        with ThreadPoolExecutor(max_workers=min(self.options.workers, len(requests))) as pool:
            return list(pool.map(self.run, requests))

    def started(self, request: RunRequest) -> RunRequest:
        """``request`` as it starts now: its timeout cut to what is left before its deadline (at least a second).
        Called again once a worker slot is free, since a run of a batch may wait for one (docstring-sections: a
        draft queued behind two others for 30 s, then ran its whole 60 s timeout past the search's end)."""
        if request.deadline is None:
            return request
        return replace(request, timeout=max(1.0, min(request.timeout, request.deadline - time.time())))

    def _execute(self, request: RunRequest, workdir: Path) -> RunResult:
        with self._slots:
            return self.execute(self.started(request), workdir)

    def execute_folds(self, request: RunRequest, workdir: Path, folds: list[Path]) -> list[RunResult]:
        """One result per fold, fold k run in ``workdir/fold<k>`` on input ``folds[k]``. This default runs them as
        separate scripts in parallel within the worker slots; an executor may do it more cheaply (the local one
        runs them one after another in one process, which imports the libraries once)."""
        jobs = [(replace(request, input_dir=fold), workdir / f"fold{k}") for k, fold in enumerate(folds)]
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            return list(pool.map(lambda job: self._execute(*job), jobs))

    def _run_folds(self, request: RunRequest, workdir: Path, folds: list[Path]) -> RunResult:
        """Run the script once per fold and merge the folds' outputs into ``workdir``; the first fold that fails
        stands for the whole run."""
        if workdir.exists():
            shutil.rmtree(workdir)
        workdir.mkdir(parents=True)
        (workdir / SCRIPT_NAME).write_text(request.code)
        results = self.execute_folds(request, workdir, folds)
        for fold, result in zip(folds, results):
            self._check_outputs(replace(request, input_dir=fold), result)
        seconds = sum(r.seconds for r in results)
        failed = next((r for r in results if not r.ok), None)
        if failed is not None:
            failed.message = f"fold {results.index(failed) + 1} of {len(folds)}: {failed.error_tail}"
            failed.seconds, failed.folds, failed.startup = seconds, len(folds), results[0].startup
            return failed
        for name in (VAL_PREDICTIONS, SUBMISSION):
            parts = [r.workdir / name for r in results]
            if not all(p.is_file() for p in parts):
                continue
            try:
                merged = merge_predictions([pd.read_csv(p) for p in parts])
            except Exception as exc:  # noqa: BLE001 - whatever the script wrote
                return RunResult(status=Status.ERROR, seconds=seconds, workdir=workdir, folds=len(folds),
                                 message=f"the folds' {name} files cannot be merged: {type(exc).__name__}: {exc}")
            write_atomic(workdir / name, merged.to_csv(index=False))
        reported = [r.reported_score for r in results]
        first = results[0]
        return RunResult(status=Status.OK, seconds=seconds, workdir=workdir, folds=len(folds), startup=first.startup,
                         reported_score=None if None in reported else sum(reported) / len(reported),
                         stdout_tail=first.stdout_tail, stderr_tail=first.stderr_tail, returncode=first.returncode)

    def cache_key(self, request: RunRequest) -> str:
        # not the timeout: a script that finished under one limit stands for a run under another (a resumed run's
        # limits depend on the time left); a timed-out one is retried under a longer limit (see _reusable)
        payload = json.dumps({
            "code": request.code, "data": self.fingerprint(request.input_dir),
            "memory": self.options.memory_mb, "check": request.check_submission, "id": request.id_column,
        }, sort_keys=True)
        return _sha(payload)

    def fingerprint(self, folder: Path) -> str:
        """A content hash of every file in ``folder`` (memoised by path, size and modification time). A linked
        asset folder (an image folder: see core.assets) counts by its path and its files' sizes and times, read
        once per process: its thousands of files are the task's, read-only while the run lasts."""
        entries = sorted(Path(folder).rglob("*"))
        files = [p for p in entries if p.is_file()]
        linked = [p for p in entries if p.is_symlink() and p.is_dir()]
        stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
        stamp += tuple((str(p), os.readlink(p), self._asset_stamp(p.resolve())) for p in linked)
        if stamp not in self._fingerprints:
            h = hashlib.sha256()
            for p in files:
                h.update(str(p.relative_to(folder)).encode() + b"\0")
                with p.open("rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
            for p in linked:
                h.update(f"{p.relative_to(folder)} -> {self._asset_stamp(p.resolve())}\0".encode())
            self._fingerprints[stamp] = h.hexdigest()
        return self._fingerprints[stamp]

    def _asset_stamp(self, folder: Path) -> str:
        if folder not in self._asset_stamps:
            self._asset_stamps[folder] = asset_stamp(folder)
        return self._asset_stamps[folder]

    # helpers
    def _lock_for(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._key_locks.setdefault(key, threading.Lock())

    def _check_outputs(self, request: RunRequest, result: RunResult) -> None:
        """Turn a clean exit into ok / no_score / invalid_submission from what the script left behind."""
        if result.status != Status.OK:
            return
        val = result.workdir / VAL_PREDICTIONS
        result.val_predictions = val if val.is_file() else None
        if result.reported_score is None and result.val_predictions is None:
            result.status = Status.NO_SCORE
            result.message = (f"the script printed no 'Final Validation Performance: <float>' line and wrote no "
                              f"{VAL_PREDICTIONS}")
            return
        sample = request.input_dir / "sample_submission.csv"
        sub = result.workdir / SUBMISSION
        result.submission = sub if sub.is_file() else None
        if request.check_submission and sample.is_file():
            problems = submission_problems(sub, sample, request.id_column)
            if problems:
                result.status = Status.INVALID_SUBMISSION
                result.message = "; ".join(problems)


def parse_score(stdout: str) -> float | None:
    """The value of the last ``Final Validation Performance: <float>`` line, or None."""
    found = SCORE_LINE.findall(stdout)
    if not found:
        return None
    try:
        return float(found[-1])
    except ValueError:
        return None


def _digests(workdir: Path) -> dict[str, str]:
    """sha256 of the files a cached result stands on: the script and the predictions it wrote."""
    found = {}
    for name in (SCRIPT_NAME, VAL_PREDICTIONS, SUBMISSION):
        path = Path(workdir) / name
        if path.is_file():
            found[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
