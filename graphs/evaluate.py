"""How nodes get code scored: ask the policy (falling back to the heuristic one), guard the code with the static
leakage check, run it through the executor, score its validation predictions, and debug what fails."""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from core.checks import leakage_findings
from core.executor import RunRequest, RunResult, Status
from core.scoring import score_predictions
from graphs.context import RunContext
from graphs.progress import emit
from graphs.state import Attempt

# the most of the search time left that one policy call may take: a slow model cannot spend the run's budget on one
# reply, and the calls after it still get time (each a share of what is left)
CALL_SHARE = 0.25


def policy_name(rc: RunContext) -> str:
    """The policy's name for log lines: its own, else the name task.yaml chose it by (a plugin's object may have
    none)."""
    return getattr(rc.policy, "name", None) or rc.task.policy.name


def ask(rc: RunContext, role: str, *args: Any, **kwargs: Any) -> Any:
    """Call one role on the configured policy; if it fails or has nothing, the heuristic policy answers.

    A policy with a ``deadline(seconds)`` context (the LLM policies: see ``plugins.llm.LLMPolicy``) gets
    ``CALL_SHARE`` of the search time left for the call, and reports whether its model failed the role; when it says
    to give up on the role, the heuristic answers that role for the rest of the run (``rc.handed_to_heuristic``)."""
    answer = None
    # a policy may implement only some roles; a role handed to the heuristic is not asked again
    method = None if role in rc.handed_to_heuristic else getattr(rc.policy, role, None)
    if method is not None:
        answer = _policy_answer(rc, role, method, args, kwargs)
    if not answer and rc.fallback is not rc.policy:
        log = logger.info if method is not None else logger.debug
        log(f"role {role}: policy '{policy_name(rc)}' had nothing; the heuristic policy answers")
        answer = getattr(rc.fallback, role)(rc.ctx, *args, **kwargs)
    return answer


def _policy_answer(rc: RunContext, role: str, method, args: tuple, kwargs: dict) -> Any:
    """The configured policy's answer (None if it raised), within its share of the time when it takes a deadline."""
    scope = getattr(rc.policy, "deadline", None)
    answer = None
    with scope(CALL_SHARE * max(0.0, rc.search_time_left())) if scope is not None else nullcontext() as report:
        try:
            answer = method(rc.ctx, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - a policy failure must not end the run; it is logged and replaced
            logger.warning(f"policy '{policy_name(rc)}' failed in role {role}: {type(exc).__name__}: {exc}")
    if report is not None and report.give_up:
        hand_over(rc, role, f"{report.failures_in_a_row} unusable answers in a row (last: {report.error})")
    return answer


def hand_over(rc: RunContext, role: str, reason: str) -> None:
    """The heuristic answers ``role`` from now on; said once in the log and kept for the run's report."""
    if rc.handed_to_heuristic.setdefault(role, reason) is not reason:
        return  # a parallel branch handed it over first
    logger.warning(f"role {role}: policy '{policy_name(rc)}' gave {reason}; the heuristic policy answers {role} "
                   f"for the rest of the run")


@dataclass
class Job:
    """A script to evaluate, with where it came from."""

    code: str
    node: str
    label: str
    plan: str = ""
    parent: int | None = None
    info: dict | None = None  # stored with the attempt in the run store (see RunRequest.info)


def guard(rc: RunContext, job: Job) -> Job:
    """The data-leakage checker: a script that fits on validation or test data is rewritten before it runs."""
    findings = leakage_findings(job.code)
    if not findings:
        return job
    messages = [f.message for f in findings]
    logger.info(f"{job.label}: leakage found ({messages[0]}); asking the policy to fix it")
    fixed = ask(rc, "fix_leakage", job.code, messages)
    if fixed and not leakage_findings(fixed):
        return Job(fixed, job.node, job.label, job.plan + " [leakage fixed]", job.parent, job.info)
    logger.warning(f"{job.label}: leakage could not be fixed; the script runs as written and is flagged")
    return Job(job.code, job.node, job.label, job.plan + " [LEAKAGE: " + "; ".join(messages)[:300] + "]", job.parent,
               job.info)


def evaluate(rc: RunContext, jobs: list[Job], *, fidelity: str = "search", debug: bool = True,
             input_dir: Path | None = None, timeout: float | None = None,
             deadline: float | None = None) -> list[Attempt]:
    """Run the jobs in parallel and score them; failures go through ``debug_rounds`` when ``debug``. No run lasts
    past ``deadline`` (wall-clock time; default: the end of the search time, for runs without a given timeout)."""
    if not jobs:
        return []
    jobs = [guard(rc, j) for j in jobs]
    input_dir = input_dir or (rc.data.search_dir if fidelity == "search" else rc.data.full_dir)
    if deadline is None and timeout is None:
        deadline = time.time() + max(rc.run_timeout(), rc.search_time_left())
    requests = [RunRequest(code=j.code, input_dir=input_dir, timeout=timeout or rc.run_timeout(), node=j.node,
                           parent_id=j.parent, plan=j.plan, fidelity=fidelity, id_column=rc.ctx.id_column,
                           info=j.info, deadline=deadline)
                for j in jobs]
    attempts = [scored(rc, j, r) for j, r in zip(jobs, rc.executor.run_many(requests))]
    emit({"event": "runs", "node": jobs[0].node, "done": len(attempts),
          "failed": sum(a.get("score") is None for a in attempts)})
    if debug:
        attempts = debug_rounds(rc, attempts, fidelity=fidelity, input_dir=input_dir)
    return attempts


def scored(rc: RunContext, job: Job, result: RunResult) -> Attempt:
    """The framework's verdict on one run: its metric on the validation rows, or an explicit failure status."""
    status, score, message = result.status, None, result.error_tail
    if result.ok:
        if result.val_predictions is None:
            status, message = Status.INVALID_PREDICTIONS, "wrote no val_predictions.csv"
        else:
            score, problem = score_predictions(result.val_predictions, rc.truth_rows, rc.ctx, rc.metric)
            if score is None:
                status, message = Status.INVALID_PREDICTIONS, problem
    if result.attempt_id is not None:
        rc.store.update_attempt(result.attempt_id, status=status.value, score=score,
                                error_tail=None if score is not None else message[-2000:])
    holdout = None
    if score is not None and rc.selection_rows is not None:  # never compared during the search
        holdout, _ = score_predictions(result.val_predictions, rc.selection_rows, rc.ctx, rc.metric)
    attempt = Attempt(id=result.attempt_id, node=job.node, code=job.code, plan=job.plan, parent=job.parent,
                      status=status.value, score=score, reported=result.reported_score,
                      message=message[-1500:] if score is None else "", workdir=str(result.workdir),
                      seconds=round(result.seconds, 3), folds=result.folds, startup=round(result.startup, 3),
                      label=job.label, holdout=holdout)
    shown = f"{score:.5g}" if score is not None else status.value
    logger.debug(f"{job.label}: {shown} in {result.seconds:.1f}s{' (cached)' if result.cached else ''}")
    return attempt


def debug_rounds(rc: RunContext, attempts: list[Attempt], *, fidelity: str = "search",
                 rounds: int | None = None, input_dir: Path | None = None) -> list[Attempt]:
    """Up to ``rounds`` (default: the task's debug_retries) rounds of the debugger over the failed attempts."""
    rounds = rc.task.budget.debug_retries if rounds is None else rounds
    attempts = list(attempts)
    for r in range(rounds):
        failed = [i for i, a in enumerate(attempts) if a.get("score") is None]
        if not failed or rc.search_time_left() <= 0:
            break
        fixes = []
        for i in failed:
            a = attempts[i]
            code = ask(rc, "debug", a["code"], a.get("message") or a.get("status", ""))
            if code and code != a["code"]:
                fixes.append((i, Job(code, a["node"] + ":debug", f"{a.get('label', a['node'])} (debug {r + 1})",
                                     a.get("plan", ""), a.get("id"))))
        if not fixes:
            break
        for (i, _), fixed in zip(fixes, evaluate(rc, [j for _, j in fixes], fidelity=fidelity, debug=False,
                                                     input_dir=input_dir)):
            attempts[i] = fixed
    return attempts


def drafts_to_debug(rc: RunContext, state: dict) -> list[str]:
    """The keys of the first pass's failed drafts the debug node repairs next: none once its rounds or the search
    time are spent."""
    if state.get("debug_round", 0) >= rc.task.budget.debug_retries or rc.search_time_left() <= 0:
        return []
    return [k for k, a in state.get("drafts", {}).items() if a.get("score") is None and a.get("code")]


def better(rc: RunContext, a: Attempt | None, b: Attempt | None) -> bool:
    """Whether attempt ``a`` beats ``b`` on the framework's score (a failed attempt never does)."""
    return rc.metric.better((a or {}).get("score"), (b or {}).get("score"))


def best_of(rc: RunContext, attempts: list[Attempt]) -> Attempt | None:
    best = None
    for a in attempts:
        if better(rc, a, best):
            best = a
    return best
