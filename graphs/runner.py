"""Runs a task end to end: output folder, run store, checkpointed graph (resumable), live progress, and the
result files (result.json, report.md) when the graph ends."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
import uuid
from dataclasses import replace
from contextlib import contextmanager
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.config import get_config
from loguru import logger

from core.dataprep import prepare_data
from core.errors import TaskError, UserError
from core.loading import installed_registry, load_task_with, load_with_plugins
from core.files import write_atomic
from core.logs import setup_logging
from core.registry import Registry
from core.store import RunStore
from core.task import Task
from graphs.build import build_graph, plan_topology
from graphs.context import Clock, RunContext
from graphs.progress_view import ProgressView
from graphs.report import result_document, write_reports
from graphs.report_html import write_report_html

FALLBACK_POLICY = "heuristic"


def make_context(task: Task, registry: Registry, run_id: str, store: RunStore) -> RunContext:
    """Build every live service a run needs from the task's plugin choices."""
    metric = registry.metrics[task.metric]
    data = prepare_data(task, maximize=metric.maximize, proba=metric.proba)
    where = str(task.source)

    def build(kind: str, choice, key: str, **kwargs):
        factory = registry.get(kind, choice.name, f"{where}: {key}.name")
        try:
            return factory(dict(choice.options), **kwargs)
        except (TypeError, ValueError) as exc:
            raise TaskError(f"{where}: {key}.options: {exc}") from None

    policy = build("policy", task.policy, "policy", task=task, store=store, registry=registry, run_id=run_id)
    fallback = policy
    if task.policy.name != FALLBACK_POLICY and FALLBACK_POLICY in registry.policies:
        fallback = registry.policies[FALLBACK_POLICY]({"seed": task.seed}, task=task, store=store, registry=registry,
                                                      run_id=run_id)
    executor = build("executor", task.executor, "executor", out_dir=task.output, store=store, run_id=run_id)
    check_isolation(task, policy, executor)
    search = build("search backend", task.retrieval, "retrieval", cache_dir=task.output / "cache" / "search")
    clock = Clock(task.budget.total_seconds, task.output / "clock.json", run_id)
    workers = getattr(getattr(executor, "options", None), "workers", 1)
    facts = {"budget_seconds": float(task.budget.total_seconds)}
    if getattr(getattr(executor, "options", None), "gpus", None):  # the script contract offers the run's GPU
        facts["gpus"] = 1
    data = replace(data, context=data.context.model_copy(update=facts))
    return RunContext(task=task, registry=registry, metric=metric, data=data, policy=policy, fallback=fallback,
                      executor=executor, store=store, search=search, run_id=run_id, clock=clock, workers=workers)


def check_isolation(task: Task, policy, executor) -> None:
    """Fail closed: code the framework did not write runs unisolated only when the user said so; the framework's
    own scripts may, with one warning."""
    if getattr(executor, "isolation", "unknown") != "none":
        return
    if task.executor.options.get("isolation") == "none":
        logger.warning("scripts run unisolated (executor isolation: none): own folder, clean environment, limits")
    elif getattr(policy, "framework_code", False):
        logger.warning("bubblewrap cannot run here: the framework's own scripts run unisolated (own folder, clean "
                       "environment, limits); install bubblewrap to confine them")
    else:
        raise TaskError(f"{task.source}: policy '{task.policy.name}' writes code the framework did not, and bubblewrap "
                        f"cannot run here, so that code would run unisolated; install bubblewrap (e.g. apt install "
                        f"bubblewrap; it runs unprivileged where user namespaces are allowed) or set "
                        f"executor.options.isolation: none to accept that risk")


@contextmanager
def output_lock(out: Path):
    """Hold the output folder for one run: a second run into it is refused with one line, not interleaved (the
    kernel drops the lock with the process, so a killed run never leaves it behind)."""
    handle = open(out / "run.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise UserError(f"{out}: another run is using this output folder ({holder}); wait for it to finish, or "
                        f"pass another --out") from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()


def run_task(task: Task, registry: Registry, *, resume: bool = False, verbose: bool = False,
             show_progress: bool = True) -> int:
    """Run (or resume) the task; returns the process exit code (0: a valid submission was written)."""
    task.output.mkdir(parents=True, exist_ok=True)
    with output_lock(task.output):
        return _run_task(task, registry, resume=resume, verbose=verbose, show_progress=show_progress)


def _run_task(task: Task, registry: Registry, *, resume: bool, verbose: bool, show_progress: bool) -> int:
    out = task.output
    topology = plan_topology(registry, task)  # a graph that cannot reach submit is refused before anything starts
    setup_logging(out, verbose)
    run_file = out / "run.json"
    previous = json.loads(run_file.read_text()) if run_file.is_file() else None
    if resume and previous is None:
        raise UserError(f"{out}: no run to resume here; start one without --resume")
    if not resume and previous is not None and previous.get("status") != "finished":
        raise UserError(f"{out}: holds an unfinished run ({previous['run_id']}); continue it with --resume, "
                        f"or pass another --out")
    if resume:
        run_id = previous["run_id"]
    else:
        run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]  # a new run id: the clock starts at zero
    write_atomic(run_file, json.dumps({"run_id": run_id, "status": "running", "task": str(task.source)}))
    store = RunStore(out / "runs.sqlite")
    store.start_run(run_id, task.name, task_type=task.task_type, metric=task.metric,
                    maximize=registry.metrics[task.metric].maximize, task_json=task.model_dump_json())
    rc = make_context(task, registry, run_id, store)
    logger.info(f"run {run_id}: task {task.name} ({task.task_type}, {task.metric}), output {out}")
    conn = sqlite3.connect(out / "checkpoints.sqlite", check_same_thread=False)
    try:
        graph = build_graph(rc, topology).compile(checkpointer=SqliteSaver(conn))
        # LangGraph's thread pool also runs its stream waiter (streaming custom events keeps one waiting there): one
        # thread more than the workers, or a node branch waits for a thread (with one worker, forever)
        config = {"configurable": {"thread_id": run_id}, "recursion_limit": 500, "max_concurrency": rc.workers + 1}
        snapshot = graph.get_state(config)
        finished = resume and not snapshot.next and bool(snapshot.values.get("final"))
        if finished:
            logger.info("nothing left to resume: the graph had finished; rewriting the outputs")
        else:
            with ProgressView(rc, enabled=show_progress) as view:
                # sync: a step's checkpoint is on disk before the next starts, so a kill never costs finished work
                for mode, chunk in graph.stream(None if resume and snapshot.next else {}, config,
                                                stream_mode=["custom", "updates"], durability="sync"):
                    view.update(mode, chunk)
        state = graph.get_state(config).values
    finally:
        conn.close()
    result = result_document(rc, state)
    write_reports(out, result, [a.get("table", "") for a in state.get("ablations", [])])
    write_report_html(out, result, out / "runs.sqlite")
    ok = state.get("final", {}).get("status") == "ok"
    store.finish_run(run_id, "finished" if ok else "failed", result)
    write_atomic(run_file, json.dumps({"run_id": run_id, "status": "finished", "task": str(task.source)}))
    rc.clock.save()
    final = state.get("final", {})
    if ok:
        logger.info(f"done: validation {task.metric} {final['score']:.5g} → {out / 'submission.csv'}")
    else:
        logger.error(f"no valid submission: {final.get('message', 'the run failed')}")
    return 0 if ok else 1


def open_run(task_path: str | Path, out: str | Path | None = None, *, registry: Registry | None = None,
             run_id: str | None = None) -> RunContext:
    """For embedding apps: load task.yaml (with the installed plugins, or those of ``registry``) and build a run's
    context. Its budget clock starts when the graph first reads it. A new ``run_id`` (the default) starts the clock
    at zero; the run_id of a run the folder holds carries on with the time it spent."""
    if registry is None:
        task, registry = load_with_plugins(task_path, out)
    else:
        task = load_task_with(task_path, registry, out)
        if task.plugins.disable:
            raise TaskError(f"{task_path}: plugins.disable: this graph was built with the plugins it has; block "
                            f"plugins with MLESTAR_DISABLE_PLUGINS when building it, or run the task with core.run")
    task.output.mkdir(parents=True, exist_ok=True)
    run_id = run_id or "embedded-" + uuid.uuid4().hex[:6]
    store = RunStore(task.output / "runs.sqlite")
    store.start_run(run_id, task.name, task_type=task.task_type, metric=task.metric)
    return make_context(task, registry, run_id, store)


class RunContexts:
    """The runs of a graph that serves any task (``build_graph(contexts=RunContexts())``): a run's context is built
    when its first node runs, from the task.yaml its input state names, and kept per LangGraph thread, so a thread
    resumed by a new process (its checkpointer's) carries on with the same run id and budget clock."""

    def __init__(self, registry: Registry | None = None, default_task: str | Path | None = None) -> None:
        self.registry = registry or installed_registry()
        self.default_task = default_task  # for a run whose input names none (LangGraph Studio's empty input)
        self._runs: dict[tuple, RunContext] = {}
        self._lock = threading.Lock()

    def get(self, state: dict) -> RunContext:
        task_path = state.get("task") or self.default_task
        if not task_path:
            raise TaskError("the graph's input names no task: invoke it with {'task': 'path/to/task.yaml'} "
                            "(and 'out' for another output folder)")
        try:
            thread = (get_config().get("configurable") or {}).get("thread_id")
        except RuntimeError:  # called outside a graph run
            thread = None
        key = (str(thread), str(task_path), str(state.get("out") or ""))
        with self._lock:
            if key not in self._runs:
                self._runs[key] = open_run(task_path, state.get("out"), registry=self.registry,
                                           run_id=f"thread-{thread}" if thread is not None else None)
            return self._runs[key]
