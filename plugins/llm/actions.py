"""The two action formats of one refinement step, shared by the LLM policies and the RL trainer: the prompt a state
becomes, the reply parsed back into an action, and the action turned into a new script.

- ``structured``: a JSON object naming a catalogue operation and its arguments (``{"op": ..., "args": {...}}``),
  chosen from a short menu of the heuristic catalogue's operations for the block; the heuristic implementer writes
  the code. The prompt stays compact (a few hundred tokens) so a small model reads it quickly.
- ``free``: a one-sentence plan and the new code of the target block, in a ```python fence (the papers' setting).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ablation import SpliceError, splice, split_blocks
from core.policy import BlockInfo, PlanRecord, TaskContext
from space import ops
from space.ops import parse_plan
from space.render import block_spec
from plugins.llm import prompting, replies
from plugins.llm.replies import ReplyError

FORMATS = ("structured", "free")
MENU_SIZE = 6
OPS = ops.OP_NAMES  # every op the catalogue can apply, tune included

SYSTEM = {
    "structured": "You improve one block of a machine-learning script. Reply with one JSON object only.",
    "free": "You improve one block of a machine-learning script. Reply with a one-sentence plan, then the new block "
            "in a ```python fence.",
}


@dataclass
class StepView:
    """What one refinement step sees: the task, the script, its target block, the ablation summary, the plans tried
    before (with scores) and the score before the step."""

    ctx: TaskContext
    code: str
    block: BlockInfo
    ablation: str = ""
    history: list[PlanRecord] = field(default_factory=list)
    prev_score: float | None = None

    def menu(self, size: int = MENU_SIZE) -> list[dict]:
        """The catalogue's best untried operations for the block, as {"op", "args", "text"} (empty: the block has no
        spec to operate on, e.g. a script no heuristic wrote)."""
        plans = ops.candidate_plans(self.ctx, self.code, self.block, self.history, self.prev_score, size)
        out = []
        for plan in plans or []:
            parsed = parse_plan(plan)
            if parsed:
                out.append({"op": parsed[0], "args": parsed[1], "text": plan[: plan.rfind("(op:")].strip()})
        return out


def role_view(ctx: TaskContext, code: str, block: BlockInfo, ablation: str, base_score: float | None,
              history: list[PlanRecord]) -> StepView:
    """The view of a ``plan_refinement`` call: its arguments, the ablation as prompt text and the score of the script
    being refined (what the trainer's states record)."""
    return StepView(ctx=ctx, code=code, block=block, ablation=ablation or "", history=list(history),
                    prev_score=base_score)


@dataclass(frozen=True)
class Action:
    """A parsed reply: the plan text (a structured one carries its ``(op: ...)`` tag) and, for ``free``, the block."""

    plan: str
    op: dict | None = None
    block_source: str | None = None


def messages(view: StepView, fmt: str) -> list[dict]:
    """The chat messages (system, user) a state becomes in format ``fmt``."""
    user = structured_prompt(view) if fmt == "structured" else free_prompt(view)
    return [{"role": "system", "content": SYSTEM[fmt]}, {"role": "user", "content": user}]


def structured_prompt(view: StepView) -> str:
    ctx = view.ctx
    direction = "higher is better" if ctx.maximize else "lower is better"
    kinds = {}
    for c in ctx.columns:
        kinds[c.dtype] = kinds.get(c.dtype, 0) + 1
    spec = block_spec(view.block.source, view.block.kind)
    lines = [f"Task: {ctx.task_type}, metric {ctx.metric} ({direction}); {ctx.n_train} training rows; features: "
             + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ".",
             f"Block: {view.block.kind}. Score before: {_fmt(view.prev_score)}.",
             f"Current {view.block.kind}: {spec.model_dump_json(exclude_defaults=True) if spec is not None else '?'}"]
    if view.ablation:
        lines.append("Ablation: " + " ".join(view.ablation.split())[:240])
    tried = [f"{_op_json(p)} -> {_fmt(h.score) if h.score is not None else h.status}"
             for h in view.history[-4:] if (p := parse_plan(h.plan))]
    if tried:
        lines.append("Tried: " + "; ".join(tried))
    lines.append("Options:")
    lines += [f"- {_op_json((m['op'], m['args']))}" for m in view.menu()]
    lines.append('Reply with the one JSON object {"op": ..., "args": {...}} most likely to improve the score.')
    return "\n".join(lines)


def free_prompt(view: StepView) -> str:
    ctx = view.ctx
    code = prompting.without_specs(prompting.block_context(view.code, view.block))
    return "\n".join([
        prompting.task_text(ctx, max_columns=20),
        f"Score before this step: {_fmt(view.prev_score)}.",
        f"Ablation: {' '.join(view.ablation.split())[:400]}" if view.ablation else "",
        "Plans tried on this block:\n" + prompting.history_text(view.history, ctx.maximize, limit=6),
        "The script (the block to improve is replaced by a placeholder):\n```python\n" + code[-2500:] + "\n```",
        f"The {view.block.kind} block to improve:\n```python\n{prompting.without_specs(view.block.source)}\n```",
        "Reply with `Plan: <one sentence>` and then the whole new block in one ```python fence.",
    ])


def parse(text: str, view: StepView, fmt: str) -> Action:
    """The action in a reply; ReplyError says what is malformed (a format error: reward 0)."""
    if fmt == "structured":
        return parse_structured(text, view)
    return parse_free(text, view)


def parse_untried(text: str, view: StepView, fmt: str) -> Action:
    """The action in a reply, refused (ReplyError) when ``refusal`` finds it was already tried or changes nothing:
    what a planner may propose (the trainer rewards such actions as refused instead)."""
    action = parse(text, view, fmt)
    why = refusal(view, action)
    if why == "repeat":
        raise ReplyError("that action was already tried on this block; choose another")
    if why == "no_op":
        raise ReplyError(f"op {action.op['op']} with these args does not change the {view.block.kind} block; "
                         f"choose one of the options")
    return action


def refusal(view: StepView, action: Action) -> str | None:
    """Why the pipeline would refuse a parsed action: ``repeat`` (the same plan as a tried one, or an op that writes
    the block a tried op wrote), ``no_op`` (an op that leaves the block as it is), or None (it may run)."""
    if action.plan in {h.plan for h in view.history}:
        return "repeat"
    if action.op is None:
        return None
    block = block_of(view, action)
    if block in (None, view.block.source):
        return "no_op"
    if block in [block_of(view, Action(h.plan)) for h in view.history if parse_plan(h.plan)]:
        return "repeat"
    return None


def parse_structured(text: str, view: StepView | None = None) -> Action:
    value = replies.extract_json(text, dict)
    op, args = value.get("op"), value.get("args", {})
    if not isinstance(op, str) or op not in OPS:
        raise ReplyError(f'"op" must be one of {", ".join(OPS)}; got {op!r}')
    if not isinstance(args, dict):
        raise ReplyError(f'"args" must be a JSON object; got {args!r}')
    described = next((m["text"] for m in (view.menu() if view else []) if m["op"] == op and m["args"] == args), None)
    text_part = described or f"Apply {op} with {json.dumps(args, sort_keys=True)}."
    return Action(plan=f"{text_part} (op: {op} {json.dumps(args, sort_keys=True)})", op={"op": op, "args": args})


def parse_free(text: str, view: StepView) -> Action:
    text = (text or "").strip()
    head = text.split("```", 1)[0].strip()
    plan = next((line.split(":", 1)[1].strip() for line in head.splitlines() if line.lower().startswith("plan:")),
                " ".join(head.split())[:300])
    if not plan:
        raise ReplyError("the reply has no plan line (`Plan: ...`) before the code")
    block = replies.parse_block(text, view.code, view.block)
    return Action(plan=plan[:600], block_source=block)


def apply(view: StepView, action: Action) -> str | None:
    """The script with the action carried out in the target block, or None when it cannot be (an op that does not
    fit the block, a block that does not splice)."""
    new_block = block_of(view, action)
    if not new_block:
        return None
    target = next((b for b in split_blocks(view.code) if b.source == view.block.source), None)
    if target is None:
        return None
    try:
        return splice(view.code, target, new_block)
    except SpliceError:
        return None


def restates(view: StepView, action: Action) -> bool:
    """Whether a structured action fits the block but asks for the settings it already has (a no-op, not an error)."""
    if action.op is None:
        return False
    spec, new = ops.specs_for(view.ctx, view.code, view.block, action.plan)
    return new is not None and new == spec


def block_of(view: StepView, action: Action) -> str | None:
    """The target block's new source: the free action's own block, or the heuristic implementer's code for the
    structured action's op (None when the op does not fit the block)."""
    if action.block_source is not None:
        return action.block_source
    return ops.implement(view.ctx, view.code, view.block, action.plan)


def render(action: Action, fmt: str) -> str:
    """The reply that states ``action`` in format ``fmt``: the completion an expert demonstration trains on."""
    if fmt == "structured":
        if action.op is None:
            raise ValueError("a structured action needs an op")
        return _op_json((action.op["op"], action.op["args"]))
    return f"Plan: {action.plan}\n```python\n{prompting.without_specs(action.block_source or '')}\n```"


def _op_json(parsed) -> str:
    name, args = parsed
    return json.dumps({"op": name, "args": json.loads(json.dumps(args, sort_keys=True))})


def _fmt(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.6g}"
