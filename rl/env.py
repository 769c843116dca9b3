"""A Gymnasium environment over single refinement steps: ``reset`` draws a recorded state and returns its prompt,
``step`` runs the reply through rl.step.StepRunner (the code the GRPO reward calls) and ends the episode. Importing
this module registers it with Gymnasium as ``mlestar/RefineStep-v0``."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import gymnasium
from gymnasium.spaces import Text

from core.errors import UserError
from core.executor import Executor, RunRequest, RunResult
from core.loading import installed_registry, make_executor
from core.registry import Registry
from plugins.llm import actions
from rl.dataset import Step
from rl.sources import steps_from_source
from rl.step import StepRunner, prompt_of

ENV_ID = "mlestar/RefineStep-v0"
# Prompts and replies are free text (code, plans, column names in any script): every printable character of the
# Basic Multilingual Plane, plus line breaks and tabs.
CHARSET = "".join(c for c in map(chr, range(0x10000)) if c.isprintable()) + "\n\t\r"
OBSERVATION_CHARS = 32_768  # the longest prompts (free format, long block) stay under 8,000
ACTION_CHARS = 16_384  # a free-format reply: a plan and a whole block
TAIL_CHARS = 2_000
RESET_OPTIONS = ("step_id",)


class EnvError(UserError):
    """A construction or reset the environment cannot honour (what was asked for, and what to do)."""


class RefineStepEnv(gymnasium.Env):
    """One episode = one refinement step on one recorded state.

    The states come from ``steps`` or from the step source ``source`` (a name registered through the
    ``register_step_sources`` hook, given ``source_options``). ``fmt`` is the action format (``structured`` or
    ``free``); the reply runs on the executor plugin ``executor`` (built with ``executor_options``) in ``out_dir``
    (default: a temporary folder, removed by ``close``), each script capped at ``timeout`` seconds (default: the
    state's own). ``seed`` seeds the first ``reset`` that is given none.
    """

    metadata: ClassVar[dict] = {"render_modes": []}  # text only: nothing to render

    def __init__(self, steps: Sequence[Step] | None = None, *, source: str | None = None,
                 source_options: dict | None = None, fmt: str = "structured", executor: str = "local",
                 executor_options: dict | None = None, out_dir: str | Path | None = None,
                 timeout: float | None = None, seed: int | None = None, registry: Registry | None = None):
        if (steps is None) == (source is None):
            raise EnvError("RefineStepEnv: give either steps or a step source name (source=...), not both or neither")
        if fmt not in actions.FORMATS:
            raise EnvError(f"RefineStepEnv: fmt must be one of {', '.join(actions.FORMATS)}, not {fmt!r}")
        registry = registry or installed_registry()
        self.states = list(steps) if steps is not None else steps_from_source(
            registry, source, source_options, where="RefineStepEnv source")
        if not self.states:
            raise EnvError("RefineStepEnv: no states to draw from (steps is empty)")
        self._by_id = {s.step_id: s for s in self.states}
        self._own_dir = tempfile.TemporaryDirectory(prefix="mlestar-env-") if out_dir is None else None
        self.executor = make_executor(registry, executor, executor_options,
                                      Path(self._own_dir.name if self._own_dir else out_dir), "RefineStepEnv executor")
        self._runs = LastRuns(self.executor)
        self.runner = StepRunner(self._runs, registry, fmt, timeout)
        self.fmt = fmt
        self.observation_space = Text(OBSERVATION_CHARS, min_length=0, charset=CHARSET)
        self.action_space = Text(ACTION_CHARS, min_length=0, charset=CHARSET)
        self._first_seed = seed
        self._state: Step | None = None
        self._prompt = ""

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[str, dict]:
        """Draw a state (``options={"step_id": ...}`` picks one) and return its prompt text (the chat messages
        joined) and info: ``step_id``, ``task``, ``messages`` (system, user) and ``prev_score``."""
        if seed is None:
            seed, self._first_seed = self._first_seed, None
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - set(RESET_OPTIONS))
        if unknown:
            raise EnvError(f"reset: unknown option {unknown[0]!r} (known: {', '.join(RESET_OPTIONS)})")
        if "step_id" in options:
            state = self._by_id.get(options["step_id"])
            if state is None:
                raise EnvError(f"reset: no state with step_id {options['step_id']!r} among the "
                               f"{len(self.states)} this environment draws from")
        else:
            state = self.states[int(self.np_random.integers(len(self.states)))]
        messages = prompt_of(state, self.fmt)
        self._state, self._prompt = state, "\n\n".join(m["content"] for m in messages)
        return self._prompt, {"step_id": state.step_id, "task": state.task, "messages": messages,
                              "prev_score": state.prev_score}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        """Run the reply on the state; the episode ends. Info: ``rl.step.StepResult.to_dict()`` with ``step_id``,
        ``task`` and the script's ``stdout_tail`` and ``stderr_tail`` ("" when no script ran)."""
        if self._state is None:
            raise gymnasium.error.ResetNeeded("an episode is one step: call reset() before step()")
        if not isinstance(action, str):
            raise TypeError(f"an action is the reply text (str), not {type(action).__name__}")
        state, self._state = self._state, None
        [result] = self.runner.run([state], [action])
        ran = self._runs.last[0] if self._runs.last else None
        info = {"step_id": state.step_id, "task": state.task, **result.to_dict(),
                "stdout_tail": ran.stdout_tail[-TAIL_CHARS:] if ran else "",
                "stderr_tail": ran.stderr_tail[-TAIL_CHARS:] if ran else ""}
        return self._prompt, result.reward, True, False, info

    def close(self) -> None:
        """Release the executor (its ``close()``, if it has one) and remove the temporary run folder."""
        close = getattr(self.executor, "close", None)
        if callable(close):
            close()
        if self._own_dir is not None:
            self._own_dir.cleanup()


class LastRuns:
    """The executor as the step runner sees it, keeping the results of its last batch for ``info``'s log tails."""

    def __init__(self, executor: Executor):
        self.executor = executor
        self.last: list[RunResult] = []

    def run_many(self, requests: list[RunRequest]) -> list[RunResult]:
        self.last = self.executor.run_many(requests)
        return self.last


# A script's run depends on time (timeouts) and the machine, so gymnasium's step-determinism check does not apply.
if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="rl.env:RefineStepEnv", nondeterministic=True)
