"""``LLMPolicy``: every role of ``core.policy.Policy`` done by a language model. A role builds its prompt from its
template (fitted into the role's character budget), asks ``complete`` for a reply, parses it, retries once with the
parse error, and returns None when nothing usable came back, so the heuristic policy answers instead. Every call is
recorded in the run store's ``llm_calls``. Subclasses implement ``complete`` (and ``model_name``) only, reading
``call_seconds()`` for how long the model may take. With option ``action_format``, the refinement planner asks
instead in an RL-trained action format (``plugins.llm.actions``). ``deadline`` lets the pipeline bound a role call's
time and learn whether the model failed it (see ``LLMPolicy``)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from loguru import logger
from pydantic import ValidationError

from core.cards import ModelCard
from core.errors import PluginError
from core.policy import AblationView, BlockInfo, CandidateInfo, PlanRecord, TaskContext
from space.ops import parse_plan
from plugins.llm import actions, prompting, replies, skeletons
from plugins.llm.prompting import Part
from plugins.llm.replies import ReplyError

# Defaults sized for SmolLM2-135M on two CPU cores (≈9 tokens/s out, ≈170 tokens/s in): a hosted model wants more.
DEFAULT_MAX_TOKENS = {
    "summarize_search": 384, "write_initial": 640, "merge": 768, "simplify_block": 256, "summarize_ablation": 128,
    "plan_refinement": 192, "implement_plan": 384, "debug": 768, "plan_ensemble": 96, "implement_ensemble": 512,
    "fix_leakage": 768, "use_all_data": 768,
}
DEFAULT_MAX_PROMPT_CHARS = {
    "summarize_search": 4000, "write_initial": 5000, "merge": 7000, "simplify_block": 4000, "summarize_ablation": 3000,
    "plan_refinement": 5000, "implement_plan": 5000, "debug": 6000, "plan_ensemble": 2500, "implement_ensemble": 3500,
    "fix_leakage": 6000, "use_all_data": 6000,
}
WHOLE_SCRIPT_ROLES = ("merge", "debug", "fix_leakage", "use_all_data")  # the reply repeats the script it was given
CHARS_PER_TOKEN = 3.0  # Python source, conservatively: what a script of N characters costs to write back
COMMON_OPTIONS = ("max_tokens", "max_prompt_chars", "temperature", "retry_temperature", "parse_retries", "prices",
                  "action_format", "answer_roles", "timeout", "give_up_after")
DEADLINE = "deadline"  # Completion.finish_reason of a reply the call's time cut, and how its error begins
ACTION_FORMATS = ("roles", *actions.FORMATS)
# plan_refinement's reply in an action format: one short JSON object, or a plan line and a whole block
ACTION_MAX_TOKENS = {"structured": 96,
                     "free": DEFAULT_MAX_TOKENS["plan_refinement"] + DEFAULT_MAX_TOKENS["implement_plan"]}


@dataclass
class Completion:
    """One reply: its text, the tokens the call read and wrote for it, why generation stopped, and the seconds the
    model spent on it (None: the caller times the whole call, waits for a free slot included)."""

    text: str
    tokens_in: int = 0
    tokens_out: int = 0
    finish_reason: str | None = None  # "stop", "length" (hit max_tokens), DEADLINE (the call's time ran out), ...
    seconds: float | None = None


class LLMUnavailable(RuntimeError):
    """The model could not be reached or failed (after the subclass's own retries), or the call's time ran out
    (the message then starts with DEADLINE); the role returns None."""


@dataclass
class CallReport:
    """One role call under ``LLMPolicy.deadline``: when its time is up, and what the model made of it."""

    ends_at: float  # time.monotonic() at which the call's time is up
    error: str | None = None  # why the model gave nothing usable; None: it did, or it was not asked
    failures_in_a_row: int = 0  # the role's unusable answers in a row, this one included (0 after a usable one)
    give_up: bool = False  # failures_in_a_row reached the policy's give_up_after: stop asking for this role

    def seconds_left(self) -> float:
        return self.ends_at - time.monotonic()


# the role call in progress in this thread (parallel graph branches share one policy: an attribute would be shared)
_CALL: ContextVar[CallReport | None] = ContextVar("mlestar_llm_call", default=None)


class LLMPolicy:
    """Options common to every LLM policy (a subclass adds its own through ``OPTIONS``):

    - ``max_tokens``: tokens a reply may have, an int for every role or ``{role: n}`` (other roles keep defaults);
    - ``max_prompt_chars``: the same for the prompt's length in characters (task text, code and histories are cut);
    - ``temperature``: sampling temperature (0: greedy); roles that want several samples draw them when > 0;
    - ``parse_retries``: how often an unusable reply is retried with the parse error shown (default 1);
    - ``retry_temperature``: the temperature a greedy policy's retries sample at (default 0.7; 0 keeps them greedy):
      a greedy model asked the same prompt again gives the same refused reply;
    - ``prices``: ``{input: $/token, output: $/token}``, read by ``plugins.llm.usage.usage_summary``;
    - ``action_format``: how ``plan_refinement`` asks (default ``roles``: its prompt template, a list of plans).
      ``structured`` and ``free`` ask exactly the prompt the step-wise RL trainer trains an adapter on
      (``plugins.llm.actions``, not cut to ``max_prompt_chars``) and parse its one action per reply (``n`` replies
      are sampled when temperature > 0, else one is asked for); an action already tried on the block, or a
      structured op the heuristic cannot apply to it, is a parse error (a retry shows why, not the reply).
      ``structured``: the reply names a catalogue op, and ``implement_plan`` of its tagged plan is the heuristic
      implementer's, without a model call. ``free``: the reply holds the plan and the new block, and
      ``implement_plan`` of that plan returns the block. Its ``plan_refinement`` reply budget defaults to 96 tokens
      (structured) or 576 (free);
    - ``answer_roles``: the roles the model answers (default: all); the others get None at once, so the heuristic
      policy answers them. E.g. ``[plan_refinement]`` for an adapter trained on refinement steps only;
    - ``timeout``: seconds one model call may take (default 300, or the task's run_timeout when smaller);
    - ``give_up_after``: after this many unusable answers in a row for one role (nothing usable after the parse
      retry, a call that failed or ran out of time), the pipeline stops asking the model for that role and the
      heuristic answers it for the rest of the run (default 3; 0: never). A usable answer resets the count.

    The time limit of a call. ``graphs.evaluate.ask`` runs each role call inside ``with policy.deadline(seconds) as
    report:`` (any policy with a ``deadline`` method gets it; the heuristic has none). Within it, ``call_seconds()``
    is what the model may still take: the deadline's time left, never more than ``timeout``; a subclass passes it to
    its backend (``hf``: generate's ``max_time``; ``openai``: the HTTP timeout, and no retry past it). No call is
    started with less than ``MIN_CALL_SECONDS`` left (None at once, not counted as a failure); a reply the time cut
    (finish_reason DEADLINE) or a call that ran out of it (LLMUnavailable starting with DEADLINE) is a failed call
    in ``llm_calls`` whose error says "deadline", and is not retried. Afterwards ``report`` (a ``CallReport``) says
    whether the model failed the role and whether to ``give_up`` on it. Outside a deadline a call has ``timeout``.
    """

    name = "llm"
    OPTIONS: tuple[str, ...] = ()  # the subclass's own option names
    DEFAULT_TEMPERATURE = 0.0
    MIN_CALL_SECONDS = 0.5  # less time than this left: the call is not started

    def __init__(self, options: dict | None = None, *, task=None, store=None, registry=None, run_id: str | None = None,
                 **_unused):
        options = dict(options or {})
        known = (*COMMON_OPTIONS, *self.OPTIONS)
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise PluginError(f"policy {self.name}: unknown option {unknown[0]!r} (known: {', '.join(known)})")
        self.options = options
        self.task = task
        self.store = store
        self.run_id = run_id
        self.action_format = options.get("action_format", "roles")
        if self.action_format not in ACTION_FORMATS:
            raise PluginError(f"policy {self.name}: option 'action_format' must be one of {', '.join(ACTION_FORMATS)}, "
                              f"got {self.action_format!r}")
        roles = options.get("answer_roles", list(DEFAULT_MAX_TOKENS))
        if not isinstance(roles, list) or not roles or any(r not in DEFAULT_MAX_TOKENS for r in roles):
            raise PluginError(f"policy {self.name}: option 'answer_roles' must be a non-empty list of roles "
                              f"({', '.join(DEFAULT_MAX_TOKENS)}), got {roles!r}")
        self.answer_roles = frozenset(roles)
        token_defaults = DEFAULT_MAX_TOKENS if self.action_format == "roles" else \
            {**DEFAULT_MAX_TOKENS, "plan_refinement": ACTION_MAX_TOKENS[self.action_format]}
        self.max_tokens = self._per_role("max_tokens", token_defaults)
        self.max_prompt_chars = self._per_role("max_prompt_chars", DEFAULT_MAX_PROMPT_CHARS)
        self.temperature = self._number("temperature", self.DEFAULT_TEMPERATURE, 0.0, 2.0)
        self.parse_retries = int(self._number("parse_retries", 1, 0, 5, integer=True))
        self.retry_temperature = self._number("retry_temperature", 0.7, 0.0, 2.0)
        self.timeout = self._number("timeout", self.default_timeout(), 1.0, 86400.0)
        self.give_up_after = int(self._number("give_up_after", 3, 0, 1000, integer=True))
        prices = options.get("prices")
        if prices is not None and not (isinstance(prices, dict) and set(prices) <= {"input", "output"}
                                       and all(isinstance(v, (int, float)) for v in prices.values())):
            raise PluginError(f"policy {self.name}: option 'prices' must be {{input: $/token, output: $/token}}, "
                              f"got {prices!r}")
        overrides = dict(getattr(registry, "prompts", None) or {})
        self.templates = prompting.templates(overrides, owner=lambda role: registry.owner("prompt", role))
        self.stats: dict[str, Counter] = defaultdict(Counter)  # role -> first_ok, retry_ok, failed, unavailable
        self._free_blocks: dict[tuple[str, str, str], str] = {}  # (code, block source, plan) -> the block it wrote
        self._failures_in_a_row: Counter = Counter()  # role -> unusable answers since its last usable one
        self._failures_lock = threading.Lock()  # parallel branches may finish calls of one role at once

    # --- what a subclass provides -----------------------------------------------------------------------------------

    @property
    def model_name(self) -> str:
        raise NotImplementedError

    def complete(self, role: str, messages: list[dict], max_tokens: int, n: int = 1,
                 temperature: float | None = None) -> list[Completion]:
        """``n`` replies to the chat ``messages`` (fewer only if the backend cannot give more), sampled at
        ``temperature`` (default: the policy's; 0 is greedy), within ``call_seconds()``; raises LLMUnavailable when
        the model cannot answer. The replies' ``tokens_in`` add up to the prompt tokens the call read (see
        ``share``)."""
        raise NotImplementedError

    # --- the time a call may take -----------------------------------------------------------------------------------

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[CallReport]:
        """Role calls made inside take at most ``seconds`` in all (retries included); yields their CallReport."""
        report = CallReport(ends_at=time.monotonic() + max(0.0, seconds))
        token = _CALL.set(report)
        try:
            yield report
        finally:
            _CALL.reset(token)

    def call_seconds(self) -> float:
        """Seconds the model call starting now may take: the deadline's time left, at most ``timeout``."""
        report = _CALL.get()
        return self.timeout if report is None else min(self.timeout, report.seconds_left())

    def _outcome(self, role: str, error: str | None) -> None:
        """Count the role's unusable answers in a row (``error``: this one was) and tell the deadline's report."""
        with self._failures_lock:
            self._failures_in_a_row[role] = self._failures_in_a_row[role] + 1 if error else 0
            streak = self._failures_in_a_row[role]
        report = _CALL.get()
        if report is not None:
            report.error, report.failures_in_a_row = error, streak
            report.give_up = error is not None and 0 < self.give_up_after <= streak

    # --- options ----------------------------------------------------------------------------------------------------

    def _per_role(self, key: str, defaults: dict[str, int]) -> dict[str, int]:
        value = self.options.get(key)
        if value is None:
            return dict(defaults)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return {role: value for role in defaults}
        if isinstance(value, dict):
            bad = sorted(set(value) - set(defaults))
            if bad:
                raise PluginError(f"policy {self.name}: option {key!r} names unknown role {bad[0]!r} "
                                  f"(roles: {', '.join(defaults)})")
            wrong = [r for r, v in value.items() if isinstance(v, bool) or not isinstance(v, int) or v <= 0]
            if not wrong:
                return {**defaults, **value}
        raise PluginError(f"policy {self.name}: option {key!r} must be a positive integer or {{role: positive "
                          f"integer}}, got {value!r}")

    def _number(self, key: str, default: float, low: float, high: float, integer: bool = False) -> float:
        value = self.options.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)) \
                or not low <= value <= high:
            kind = "an integer" if integer else "a number"
            raise PluginError(f"policy {self.name}: option {key!r} must be {kind} from {low:g} to {high:g}, "
                              f"got {value!r}")
        return value

    # --- one role, end to end ---------------------------------------------------------------------------------------

    def _run_timeout(self) -> float | None:
        budget = getattr(self.task, "budget", None)
        return getattr(budget, "run_timeout", None)

    def default_timeout(self) -> float:
        """Seconds one call may take unless the options say: 300, or less when the task's scripts get less."""
        return float(min(300.0, self._run_timeout() or 300.0))

    def _common(self, ctx: TaskContext) -> dict[str, Any]:
        return {"task": prompting.task_text(ctx), "goal": Part(ctx.goal, "head", 300),
                "contract": prompting.contract_text(ctx, self._run_timeout())}

    def _fits(self, role: str, code: str) -> bool:
        """Whether a role that writes ``code`` back whole can: the script fits the prompt and the reply budgets."""
        prompt_room = self.max_prompt_chars[role] * 0.8
        reply_room = self.max_tokens[role] * CHARS_PER_TOKEN
        if len(code) <= min(prompt_room, reply_room):
            return True
        logger.info(f"policy {self.name}: {role} skipped: the script ({len(code)} characters) does not fit this role's "
                    f"caps (max_prompt_chars {self.max_prompt_chars[role]}, max_tokens {self.max_tokens[role]})")
        return False

    def _ask(self, role: str, fields: dict[str, Any], parse: Callable[[str, str], Any], n: int = 1) -> list[Any] | None:
        """Parsed answers from the first attempt that gave any (several when ``n`` samples were drawn), else None.
        ``parse(reply, prompt)`` returns the answer or raises ReplyError (the prompt shows what a reply echoes)."""
        user = prompting.render(self.templates[role], fields, self.max_prompt_chars[role])
        messages = [{"role": "system", "content": self.templates["system"].strip()},
                    {"role": "user", "content": user}]
        return self._ask_messages(role, messages, parse, n)

    def _ask_messages(self, role: str, messages: list[dict], parse: Callable[[str, str], Any],
                      n: int = 1, echo_reply: bool = True) -> list[Any] | None:
        """``_ask`` for a prompt built elsewhere: the chat ``messages`` as they are, the last one the user's. A retry
        shows the refused reply (``echo_reply``) and why, or only why: a model trained on the prompt alone, shown
        its own reply, copies it (SmolLM2 did, even sampled)."""
        if role not in self.answer_roles:
            return None
        user = messages[-1]["content"]
        asked = messages
        samples = n if self.temperature > 0 else 1
        retry_at = self.temperature or self.retry_temperature
        for attempt in range(1 + self.parse_retries):
            left = self.call_seconds()
            if left < self.MIN_CALL_SECONDS:
                if attempt == 0:  # not the model's failure: the run has no time for it
                    logger.debug(f"policy {self.name}: {role}: not asked ({max(0.0, left):.1f}s left for the call)")
                    return None
                break  # no time for the retry: the first reply's problem stands
            started, t0 = time.time(), time.perf_counter()
            try:
                completions = self.complete(role, messages, self.max_tokens[role], 1 if attempt else samples,
                                            retry_at if attempt else None)
            except LLMUnavailable as exc:
                self._record(role, messages, None, None, str(exc), time.perf_counter() - t0, started)
                self.stats[role]["unavailable"] += 1
                self._outcome(role, str(exc))
                logger.warning(f"policy {self.name}: {role}: the model did not answer ({exc})")
                return None
            seconds = time.perf_counter() - t0
            if not completions:
                self._record(role, messages, None, None, "the model returned no reply", seconds, started)
            answers, problems = [], []
            for i, completion in enumerate(completions):
                answer, error = _parsed(completion, user, parse)
                if error is None:
                    answers.append(answer)
                else:
                    problems.append((completion, error))
                spent = completion.seconds if completion.seconds is not None else share(seconds, len(completions), i)
                self._record(role, messages, completion, error, None, spent, started)
            if answers:
                self.stats[role]["first_ok" if attempt == 0 else "retry_ok"] += 1
                self._outcome(role, None)
                return answers
            if not problems or problems[0][0].finish_reason == DEADLINE:  # the call's time is spent: no retry
                break
            completion, error = problems[0]
            why = {"role": "user", "content": self.templates["retry"].format(error=error).strip()}
            if not echo_reply:
                messages = [*asked, why]
                continue
            echo = min(2000, max(300, self.max_prompt_chars[role] // 3))  # the retry stays near the prompt budget
            messages = [*messages, {"role": "assistant", "content": completion.text[:echo]}, why]
        self.stats[role]["failed"] += 1
        reason = problems[0][1] if problems else "no reply"
        self._outcome(role, reason)
        logger.info(f"policy {self.name}: {role}: no usable reply ({reason})")
        return None

    def _record(self, role: str, messages: list[dict], completion: Completion | None, parse_error: str | None,
                call_error: str | None, seconds: float, started: float) -> None:
        if self.store is None:
            return
        ok = completion is not None and parse_error is None and call_error is None
        self.store.add_llm_call(
            run_id=self.run_id, node=_current_node(), role=role, model=self.model_name,
            prompt=json.dumps(messages, ensure_ascii=False), reply=completion.text if completion else None,
            ok=int(ok), error=call_error or parse_error, tokens_in=completion.tokens_in if completion else 0,
            tokens_out=completion.tokens_out if completion else 0, seconds=round(seconds, 4), started_at=started)

    # --- the roles --------------------------------------------------------------------------------------------------

    def summarize_search(self, ctx: TaskContext, results: list[dict], limit: int) -> list[ModelCard] | None:
        if not results or limit <= 0:
            return None
        fields = {**self._common(ctx), "results": Part(prompting.results_text(results), "head", 600),
                  "limit": str(limit)}
        answers = self._ask("summarize_search", fields, lambda text, _: _cards(text, ctx, limit))
        return answers[0] if answers else None

    def write_initial(self, ctx: TaskContext, card: ModelCard) -> str | None:
        fields = {**self._common(ctx), "model_name": card.name, "model_why": card.why,
                  "example_code": Part(card.example_code, "head", 200), "skeleton": skeletons.initial_skeleton(ctx)}
        return _first(self._ask("write_initial", fields, _script))

    def merge(self, ctx: TaskContext, base_code: str, reference_code: str) -> str | None:
        if not self._fits("merge", base_code + reference_code):
            return None
        fields = {**self._common(ctx), "base_code": base_code, "reference_code": reference_code}
        return _first(self._ask("merge", fields, _script))

    def simplify_block(self, ctx: TaskContext, code: str, block: BlockInfo) -> str | None:
        fields = {**self._common(ctx), **self._block_fields(code, block)}
        return _first(self._ask("simplify_block", fields, lambda text, _: replies.parse_block(text, code, block)))

    def summarize_ablation(self, ctx: TaskContext, ablation: AblationView) -> str:
        base = prompting.base_score_text(ctx, ablation.base_score)
        table = ablation.table()
        fields = {**self._common(ctx), "table": Part(f"{base}\n{table}" if base else table, "head", 400)}
        return _first(self._ask("summarize_ablation", fields,
                                lambda text, prompt: replies.parse_text(text, prompt=prompt)))

    def plan_refinement(self, ctx: TaskContext, code: str, block: BlockInfo, ablation: AblationView,
                        history: list[PlanRecord], n: int) -> list[str]:
        if n <= 0:
            return []
        if self.action_format != "roles":
            return self._plan_actions(ctx, code, block, ablation, history, n)
        known = {h.plan for h in history}
        fields = {**self._common(ctx), **self._block_fields(code, block),
                  "ablation": Part(_ablation_text(ctx, ablation) or "(no ablation summary)", "head", 200),
                  "history": Part(prompting.history_text(history, ctx.maximize), "head", 200), "n": str(n)}
        answers = self._ask("plan_refinement", fields,
                            lambda text, prompt: replies.parse_plans(text, known, n, prompt=prompt), n=n)
        plans: list[str] = []
        for found in answers or []:
            plans += [p for p in found if p not in plans]
        return plans[:n] or None

    def _plan_actions(self, ctx: TaskContext, code: str, block: BlockInfo, ablation: AblationView,
                      history: list[PlanRecord], n: int) -> list[str] | None:
        """``plan_refinement`` in the action format: the trainer's prompt for this state, one action per reply."""
        fmt = self.action_format
        view = actions.role_view(ctx, code, block, _ablation_text(ctx, ablation), ablation.base_score, history)
        found = self._ask_messages("plan_refinement", actions.messages(view, fmt),
                                   lambda text, _: actions.parse_untried(text, view, fmt), n=n, echo_reply=False)
        plans: list[str] = []
        for action in found or []:
            if action.plan not in plans:
                plans.append(action.plan)
                if action.block_source is not None:
                    self._free_blocks[(code, block.source, action.plan)] = action.block_source
        return plans[:n] or None

    def implement_plan(self, ctx: TaskContext, code: str, block: BlockInfo, plan: str) -> str | None:
        if self.action_format == "structured" and parse_plan(plan) is not None:
            # the catalogue op is the whole action: the heuristic writes its code, as the trainer's reward did
            return actions.block_of(actions.StepView(ctx, code, block), actions.Action(plan))
        written = self._free_blocks.pop((code, block.source, plan), None)
        if written is not None:
            return written
        fields = {**self._common(ctx), **self._block_fields(code, block), "plan": Part(plan, "head", 300)}
        return _first(self._ask("implement_plan", fields, lambda text, _: replies.parse_block(text, code, block)))

    def debug(self, ctx: TaskContext, code: str, error: str) -> str | None:
        if not self._fits("debug", code):
            return None
        fields = {**self._common(ctx), "code": code, "error": Part(error or "(no message)", "tail", 300)}
        return _first(self._ask("debug", fields, _script))

    def plan_ensemble(self, ctx: TaskContext, candidates: list[CandidateInfo], history: list[PlanRecord]) -> str | None:
        if len(candidates) < 2:
            return None
        known = {h.plan for h in history}

        def parse(text: str, prompt: str) -> str:
            plan = replies.parse_text(text, max_chars=600, prompt=prompt)
            if plan in known:
                raise ReplyError("that plan was already tried; propose a different one")
            return plan

        fields = {**self._common(ctx), "candidates": Part(prompting.candidates_text(candidates), "head", 300),
                  "history": Part(prompting.history_text(history, ctx.maximize), "head", 200)}
        return _first(self._ask("plan_ensemble", fields, parse))

    def implement_ensemble(self, ctx: TaskContext, candidates: list[CandidateInfo], plan: str) -> str | None:
        if not plan or not candidates:
            return None
        fields = {**self._common(ctx), "contract": prompting.ensemble_contract(ctx, candidates),
                  "candidates": Part(prompting.candidates_text(candidates), "head", 300),
                  "plan": Part(plan, "head", 300), "skeleton": skeletons.ensemble_skeleton(ctx, candidates)}
        return _first(self._ask("implement_ensemble", fields, _script))

    def fix_leakage(self, ctx: TaskContext, code: str, findings: list[str]) -> str | None:
        if not self._fits("fix_leakage", code):
            return None
        fields = {**self._common(ctx), "code": code,
                  "findings": Part("\n".join(f"- {f}" for f in findings) or "(none listed)", "head", 300)}
        return _first(self._ask("fix_leakage", fields, lambda text, _: replies.parse_leak_free_script(text)))

    def use_all_data(self, ctx: TaskContext, code: str, unused_files: list[str]) -> str | None:
        if not unused_files or not self._fits("use_all_data", code):
            return None
        fields = {**self._common(ctx), "code": code,
                  "unused_files": ", ".join(f"./input/{f}" for f in unused_files[:20])}
        return _first(self._ask("use_all_data", fields,
                                lambda text, _: replies.parse_script_using(text, unused_files)))

    def _block_fields(self, code: str, block: BlockInfo) -> dict[str, Any]:
        return {"code": Part(prompting.without_specs(prompting.block_context(code, block)), "ends", 600),
                "block": prompting.without_specs(block.source), "block_kind": block.kind}


def _parsed(completion: Completion, prompt: str, parse: Callable[[str, str], Any]) -> tuple[Any, str | None]:
    """(the reply's answer, None), or (None, why it is unusable). A reply the call's time cut is unusable as it is:
    it stops mid-way, and the time a retry would need is spent."""
    if completion.finish_reason == DEADLINE:
        after = f" after {completion.seconds:.1f}s" if completion.seconds is not None else ""
        return None, f"{DEADLINE}: the call's time ran out{after}; the reply was cut"
    try:
        return parse(completion.text, prompt), None
    except ReplyError as exc:
        error = str(exc)
        if completion.finish_reason == "length" and "cut off" not in error:
            error += " (the reply was cut off at its length limit: keep it shorter)"
        return None, error


def _script(text: str, _prompt: str) -> str:
    return replies.parse_script(text)


def _first(answers: list[Any] | None) -> Any:
    return answers[0] if answers else None


def share(total: float, parts: int, index: int):
    """``total`` split over ``parts`` replies (the remainder on the first), so sums over the rows of one call stay
    exact: how a call's prompt tokens and seconds are spread over the samples it drew."""
    if isinstance(total, int):
        return total // parts + (total % parts if index == 0 else 0)
    return total / parts


def _cards(text: str, ctx: TaskContext, limit: int) -> list[ModelCard]:
    items = replies.extract_json(text, list)
    cards, seen = [], set()
    for item in items:
        if not isinstance(item, dict):
            continue
        name = str(item.get("name") or item.get("model_name") or "").strip().lower().replace(" ", "_")[:60]
        code = str(item.get("example_code") or item.get("code") or "").strip()
        if not name or name in seen:
            continue
        seen.add(name)
        fenced = replies.fenced_blocks(code)
        code = fenced[0][1] if fenced else code
        try:
            cards.append(ModelCard(name=name, family=str(item.get("family") or "unknown")[:60],
                                   task_types=[ctx.task_type], why=str(item.get("why") or "")[:600],
                                   example_code=code[:6000], source="web"))
        except ValidationError:
            continue
    if not cards:
        raise ReplyError("the JSON list holds no model with a \"name\"")
    return cards[:limit]


def _current_node() -> str | None:
    """The graph node this call is made from, when inside a LangGraph run."""
    try:
        from langgraph.config import get_config

        return get_config().get("metadata", {}).get("langgraph_node")
    except (RuntimeError, LookupError, ImportError):
        return None


def _ablation_text(ctx: TaskContext, ablation: AblationView) -> str:
    """The ablation as a prompt shows it: the base score first, then the summariser's sentences (or the table)."""
    base, described = prompting.base_score_text(ctx, ablation.base_score), ablation.described()
    return " ".join(p for p in (base if base not in described else "", described) if p)
