"""Expert demonstrations for supervised fine-tuning: for each recorded state, a few mutually diverse actions (from the
heuristic catalogue and, when given, sampled from LLM policies) that were run and ran, as trl prompt-completion rows."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from loguru import logger

from space.ops import TAG
from plugins.llm import actions
from plugins.llm.policy import LLMUnavailable
from plugins.llm.replies import ReplyError
from rl.dataset import Step
from rl.step import StepRunner, prompt_of, view_of

CATALOGUE = "catalogue"
# The policy role whose reply budget a sampled action of each format gets.
ROLE = {"structured": "plan_refinement", "free": "implement_plan"}
DEFAULT_MAX_TOKENS = {"structured": 96, "free": 768}


@dataclass(frozen=True)
class Candidate:
    """One proposed action for one state, with who proposed it (``catalogue`` or a policy's name)."""

    action: actions.Action
    source: str


def expert_examples(steps: Sequence[Step], runner: StepRunner, fmt: str, per_state: int = 3, pool: int = 16,
                    policies: Sequence = (), samples: int = 4) -> list[dict]:
    """Up to ``per_state`` diverse actions per state that ran, as rows ``{"prompt", "completion", "step_id", "task",
    "reward", "status", "gain", "plan", "source"}`` (prompt and completion as chat messages, trl's conversational
    prompt-completion format).

    The candidates of a state are the catalogue's best ``pool`` operations for its block and ``samples`` replies of
    each LLM policy in ``policies`` that parse; the ``per_state`` most diverse by TF-IDF cosine distance between their
    plans are run (every state's picks in one call, so they run in parallel) and those that ran are kept."""
    if fmt != runner.fmt:
        raise ValueError(f"the runner parses format {runner.fmt!r}, the examples are asked in {fmt!r}")
    picked: list[tuple[Step, Candidate]] = []
    for step in steps:
        found = candidates(step, fmt, pool, policies, samples)
        start = next((i for i, c in enumerate(found) if is_recorded(step, c.action)), 0)
        picked += [(step, found[i]) for i in most_diverse([plan_text(c.action) for c in found], per_state, start)]
    replies = [actions.render(c.action, fmt) for _, c in picked]
    results = runner.run([step for step, _ in picked], replies)
    return [{"prompt": prompt_of(step, fmt), "completion": [{"role": "assistant", "content": reply}],
             "step_id": step.step_id, "task": step.task, "reward": r.reward, "status": r.status, "gain": r.gain,
             "plan": plan_text(c.action), "source": c.source}
            for (step, c), reply, r in zip(picked, replies, results) if r.status == "ok"]


def candidates(step: Step, fmt: str, pool: int, policies: Sequence = (), samples: int = 4) -> list[Candidate]:
    """The catalogue's actions for the state, then each policy's, without two that state the same reply."""
    view = view_of(step)
    found = [Candidate(a, CATALOGUE) for a in catalogue_actions(view, fmt, pool)]
    for policy in policies:
        name = getattr(policy, "name", type(policy).__name__)
        found += [Candidate(a, name) for a in sampled_actions(view, fmt, policy, samples)]
    seen, out = set(), []
    for c in found:
        reply = actions.render(c.action, fmt)
        if reply not in seen:
            seen.add(reply)
            out.append(c)
    return out


def catalogue_actions(view: actions.StepView, fmt: str, size: int) -> list[actions.Action]:
    """The heuristic catalogue's best ``size`` untried operations for the block; for ``free``, each with the block
    the heuristic implementer writes for it (operations it cannot write are left out)."""
    out = []
    for item in view.menu(size):
        op = {"op": item["op"], "args": item["args"]}
        if fmt == "structured":
            out.append(actions.Action(plan=item["text"], op=op))
            continue
        tagged = f"{item['text']} (op: {item['op']} {json.dumps(item['args'], sort_keys=True)})"
        block = actions.block_of(view, actions.Action(plan=tagged, op=op))
        if block:
            out.append(actions.Action(plan=item["text"], op=op, block_source=block))
    return out


def sampled_actions(view: actions.StepView, fmt: str, policy, samples: int) -> list[actions.Action]:
    """The actions in ``samples`` replies of an LLM policy (anything with ``complete(role, messages, max_tokens, n)``,
    e.g. an ``openai`` policy) to the state's prompt; replies that do not parse are dropped, a policy that cannot
    answer gives none."""
    role = ROLE[fmt]
    max_tokens = (getattr(policy, "max_tokens", None) or {}).get(role, DEFAULT_MAX_TOKENS[fmt])
    try:
        replies = policy.complete(role, actions.messages(view, fmt), max_tokens, n=samples)
    except LLMUnavailable as exc:
        logger.warning(f"expert samples: policy {getattr(policy, 'name', policy)!r} did not answer ({exc})")
        return []
    out = []
    for reply in replies:
        try:
            out.append(actions.parse(reply.text, view, fmt))
        except ReplyError:
            continue
    return out


def is_recorded(step: Step, action: actions.Action) -> bool:
    """Whether ``action`` is the one the recorded step took."""
    if step.op is not None and action.op is not None:
        return action.op == step.op
    return plan_text(action) == TAG.sub("", step.plan).strip()


def plan_text(action: actions.Action) -> str:
    """The plan in words, without the op tag a structured reply's plan carries."""
    return TAG.sub("", action.plan).strip()


def most_diverse(texts: Sequence[str], k: int, start: int = 0) -> list[int]:
    """Indices of ``k`` texts chosen greedily farthest-first by TF-IDF cosine distance, beginning at ``start``;
    ties go to the earlier text, so the choice is deterministic."""
    if not texts or k <= 0:
        return []
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_distances

    try:
        vectors = TfidfVectorizer().fit_transform(texts)
    except ValueError:  # no word in any text (e.g. all empty): nothing to tell them apart by
        return list(range(min(k, len(texts))))
    distances = cosine_distances(vectors)
    chosen = [start]
    nearest = distances[start].copy()  # each text's distance to the closest chosen one
    while len(chosen) < min(k, len(texts)):
        nearest[chosen] = -1.0
        pick = int(np.argmax(nearest))
        chosen.append(pick)
        nearest = np.minimum(nearest, distances[pick])
    return chosen
