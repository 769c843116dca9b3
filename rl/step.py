"""Carrying out one action on one recorded state: parse the reply, splice it into the state's script, run it
(instrumented, through the project's executor: sandboxed, cached, parallel), score it with the task's metric and turn
the outcome into a reward. GRPO's reward function, the Gymnasium environment and the benchmarks all call this."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from ablation import SpliceError, instrument, reached_stages
from core.executor import Executor, RunRequest
from core.registry import Registry
from core.scoring import score_predictions
from plugins.llm import actions
from plugins.llm.replies import ReplyError
from rl.dataset import Step
from rl.reward import Outcome, reward


@dataclass
class StepResult:
    """The reward of one action with what it is made of (what the env's ``info`` and the metrics log hold)."""

    reward: float
    status: str  # an executor status, or "malformed" / "no_op" / "repeat"
    score: float | None
    prev_score: float
    gain: float | None
    seconds: float  # execution seconds (0 when nothing ran)
    stages: list[str]
    plan: str
    message: str  # the parse error, the run's error tail, or ""
    cached: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def view_of(step: Step) -> actions.StepView:
    return actions.StepView(ctx=step.context, code=step.code, block=step.block, ablation=step.ablation,
                            history=step.history, prev_score=step.prev_score)


def prompt_of(step: Step, fmt: str) -> list[dict]:
    """The chat messages that state ``step`` becomes in format ``fmt`` (what the policy answers)."""
    return actions.messages(view_of(step), fmt)


class StepRunner:
    """Runs actions for recorded states. ``timeout`` caps each script (default: the state's own run timeout)."""

    def __init__(self, executor: Executor, registry: Registry, fmt: str, timeout: float | None = None):
        if fmt not in actions.FORMATS:
            raise ValueError(f"action format must be one of {actions.FORMATS}, got {fmt!r}")
        self.executor = executor
        self.metrics = registry.metrics
        self.fmt = fmt
        self.timeout = timeout

    def run(self, steps: list[Step], replies: list[str]) -> list[StepResult]:
        """One result per (state, reply) pair; the scripts run in parallel on the executor's workers."""
        prepared, requests = [], []
        for step, text in zip(steps, replies):
            early, code, plan = self._prepare(step, text)
            prepared.append((step, early, plan))
            if early is None:
                requests.append(RunRequest(code=code, input_dir=Path(step.data_dir), node="rl", plan=plan,
                                           timeout=min(self.timeout or step.timeout, step.timeout),
                                           id_column=step.context.id_column))
        results = iter(self.executor.run_many(requests))
        return [early if early is not None else self._scored(step, plan, next(results))
                for step, early, plan in prepared]

    def _prepare(self, step: Step, text: str) -> tuple[StepResult | None, str, str]:
        """(a finished result, "", plan) when the reply cannot run, else (None, the instrumented script, plan)."""
        view = view_of(step)
        try:
            action = actions.parse(text, view, self.fmt)
        except ReplyError as exc:
            return self._result(step, Outcome("malformed"), plan="", message=str(exc)), "", ""
        code = actions.apply(view, action)
        if code is None and not actions.restates(view, action):  # another block kind's op, args outside its options
            return (self._result(step, Outcome("malformed"), plan=action.plan,
                                 message=f"the action does not fit the {step.block_kind} block: an op for another "
                                         f"kind of block, or args outside its options"), "", action.plan)
        why = "no_op" if code is None or code == step.code else actions.refusal(view, action)
        if why is not None:
            message = ("the action changes nothing in the block" if why == "no_op"
                       else "the action was already tried on this block")
            return (self._result(step, Outcome(why, prev_score=step.prev_score), plan=action.plan, message=message),
                    "", action.plan)
        try:
            return None, instrument(code), action.plan
        except SpliceError:
            return None, code, action.plan

    def _scored(self, step: Step, plan: str, run) -> StepResult:
        status, score, message = run.status.value, None, run.error_tail
        if run.ok:
            if run.val_predictions is None:
                status, message = "invalid_predictions", "wrote no val_predictions.csv"
            else:
                metric = self.metrics[step.context.metric]
                score, problem = score_predictions(run.val_predictions, Path(step.truth), step.context, metric)
                status, message = ("ok", "") if score is not None else ("invalid_predictions", problem)
        stages = tuple(reached_stages(run.stdout_tail))
        outcome = Outcome(status, score, step.prev_score, step.context.maximize, step.scale or 1.0, stages)
        return self._result(step, outcome, plan=plan, message=message[-600:], seconds=run.seconds,
                            cached=run.cached)

    def _result(self, step: Step, o: Outcome, *, plan: str, message: str, seconds: float = 0.0,
                cached: bool = False) -> StepResult:
        gain = None if o.score is None else (o.score - step.prev_score) * (1 if step.context.maximize else -1)
        return StepResult(reward=reward(o), status=o.status, score=o.score, prev_score=step.prev_score, gain=gain,
                          seconds=round(seconds, 3), stages=list(o.stages), plan=plan, message=message,
                          cached=cached)

