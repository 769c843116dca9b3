"""The step dataset: every refinement step recorded in run stores, as (state, action, outcome) rows, deduplicated,
split by task and saved as a Hugging Face ``datasets`` DatasetDict plus JSONL (schema: docs/rl.md)."""

from __future__ import annotations

import hashlib
import json
import statistics
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel

from ablation import split_blocks
from core.dataprep import saved_context
from core.errors import UserError
from core.files import write_atomic
from core.policy import AblationView, BlockInfo, PlanRecord, TaskContext
from core.store import RunStore, StoreError
from space.ops import parse_plan

SPLITS = ("train", "eval")


class DatasetError(UserError):
    """A run store or dataset folder that cannot be read into steps."""


class Step(BaseModel):
    """One refinement step. State: the task, the script and its target block, the ablation summary, the plans tried
    before with their scores, the score before. Action: the plan (and its machine op, when it has one) and the new
    block. Outcome: status, score, signed gain (positive = better), seconds. Paths point into the run's folder."""

    step_id: str
    task: str
    run_id: str
    attempt_id: int
    context: TaskContext
    data_dir: str  # the prepared input folder the step ran on (the run's data/search)
    truth: str  # the validation truth beside it (data/valid_truth.csv)
    timeout: float  # the run's per-script timeout
    code: str  # the script before the step
    block_key: str
    block_kind: str
    block_source: str
    ablation: str
    history: list[PlanRecord]
    prev_score: float
    plan: str
    op: dict | None  # {"op": name, "args": {...}} for a catalogue plan, else None
    new_block: str
    status: str
    score: float | None
    gain: float | None  # score - prev_score, signed so that positive is better; None unless status is ok
    seconds: float
    scale: float = 0.0  # the task's typical |gain| (set by build_dataset): the reward's per-task scale

    @property
    def block(self) -> BlockInfo:
        return BlockInfo(key=self.block_key, kind=self.block_kind, source=self.block_source)

    def ablation_view(self) -> AblationView:
        """The ablation as the pipeline's ``plan_refinement`` call passed it (the text recorded, its base score)."""
        return AblationView(base_score=self.prev_score, maximize=self.context.maximize, text=self.ablation)


def steps_from_store(path: str | Path) -> list[Step]:
    """Every refinement step a run store recorded (attempts of node ``refine`` carrying their ``refine_state``)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no run store there (expected a runs.sqlite written by `python -m core.run`)")
    try:
        store = RunStore(path)
    except (StoreError, Exception) as exc:  # noqa: BLE001 - a corrupt file or another schema: one line
        raise DatasetError(f"{path}: not a readable run store ({str(exc).splitlines()[0]})") from None
    try:
        runs = {r["run_id"]: r for r in store.runs()}
        steps = []
        for a in store.attempts(node="refine"):
            step = _step(store, runs.get(a["run_id"]), a)
            if step is not None:
                steps.append(step)
        return steps
    finally:
        store.close()


def _step(store: RunStore, run: dict | None, a: dict) -> Step | None:
    info = a.get("info") or {}
    if isinstance(info, str):
        info = json.loads(info)
    seen = info.get("refine_state")
    if run is None or not seen or a.get("parent_id") is None or seen.get("base_score") is None:
        return None
    parent = store.attempt(a["parent_id"])
    task = json.loads(run["task_json"] or "{}")
    data = Path(task.get("output", "")) / "data"
    context = saved_context(data)
    if parent is None or context is None:
        return None  # the run folder (its prepared data) is gone: the step cannot be replayed
    before = next((b for b in split_blocks(parent["code"]) if b.key == seen["block"]), None)
    after = next((b for b in split_blocks(a["code"]) if b.key == seen["block"]), None)
    if before is None or after is None:
        return None
    parsed = parse_plan(a["plan"] or "")
    maximize = bool(run["maximize"])
    score = a["score"] if a["status"] == "ok" else None
    prev = float(seen["base_score"])
    gain = None if score is None else (score - prev if maximize else prev - score)
    timeout = float((task.get("budget") or {}).get("run_timeout", 60))
    return Step(step_id=step_key(context.name, parent["code"], seen["block"], a["plan"] or ""),
                task=context.name, run_id=a["run_id"], attempt_id=a["attempt_id"], context=context,
                data_dir=str(data / "search"), truth=str(data / "valid_truth.csv"), timeout=timeout,
                code=parent["code"], block_key=seen["block"], block_kind=seen.get("block_kind", before.kind),
                block_source=before.source, ablation=seen.get("ablation", ""),
                history=[PlanRecord.model_validate(h) for h in seen.get("history", [])], prev_score=prev,
                plan=a["plan"] or "", op={"op": parsed[0], "args": parsed[1]} if parsed else None,
                new_block=after.source, status=a["status"], score=score, gain=gain, seconds=a["seconds"] or 0.0)


def step_key(task: str, code: str, block_key: str, plan: str) -> str:
    """Equal for the same action on the same state: what deduplication compares."""
    return hashlib.sha256("\0".join((task, code, block_key, " ".join(plan.split()))).encode()).hexdigest()[:24]


def state_key(step: Step) -> str:
    """Equal for steps taken from the same state (the same script and target block of one task)."""
    return hashlib.sha256("\0".join((step.task, step.code, step.block_key)).encode()).hexdigest()[:24]


def sample_states(steps: Iterable[Step], limit: int) -> list[Step]:
    """One step per distinct prompt (script, block and the plans tried before: plans proposed together were recorded
    from one prompt), taken round-robin over the tasks so that every task is represented, at most ``limit``."""
    seen, by_task = set(), {}
    for step in steps:
        key = (state_key(step), tuple(h.plan for h in step.history))
        if key not in seen:
            seen.add(key)
            by_task.setdefault(step.task, []).append(step)
    out, queues = [], list(by_task.values())
    while len(out) < limit and any(queues):
        for queue in queues:
            if queue and len(out) < limit:
                out.append(queue.pop(0))
    return out


def dedupe(steps: Iterable[Step]) -> list[Step]:
    """The first of each (state, action) pair: cache hits and repeated runs record the same step again."""
    seen, out = set(), []
    for step in steps:
        if step.step_id not in seen:
            seen.add(step.step_id)
            out.append(step)
    return out


def task_scales(steps: Iterable[Step]) -> dict[str, float]:
    """Per task, the median |gain| of its valid steps (the scale on which a gain counts as typical); tasks
    without a non-zero gain get 1% of their mean |score|, or 1."""
    gains: dict[str, list[float]] = {}
    scores: dict[str, list[float]] = {}
    for s in steps:
        scores.setdefault(s.task, []).append(abs(s.prev_score))
        if s.gain is not None and s.gain != 0:
            gains.setdefault(s.task, []).append(abs(s.gain))
    out = {}
    for task, values in scores.items():
        typical = statistics.median(gains[task]) if gains.get(task) else 0.0
        out[task] = typical or (0.01 * statistics.mean(values) if any(values) else 1.0)
    return out


def split_by_task(steps: list[Step], eval_tasks: Iterable[str] | None = None,
                  eval_fraction: float = 0.25) -> dict[str, list[Step]]:
    """{"train": ..., "eval": ...} with no task in both. ``eval_tasks`` names the held-out tasks; otherwise about
    ``eval_fraction`` of the tasks (at least one when there are two or more) are held out, chosen by a hash of
    their names, so the split does not depend on the order the stores were read in."""
    tasks = sorted({s.task for s in steps})
    if eval_tasks is not None:
        held = set(eval_tasks)
        unknown = sorted(held - set(tasks))
        if unknown:
            raise DatasetError(f"eval task {unknown[0]!r} has no recorded steps (tasks: {', '.join(tasks) or 'none'})")
    else:
        ranked = sorted(tasks, key=lambda t: hashlib.sha256(t.encode()).hexdigest())
        count = max(1, round(eval_fraction * len(tasks))) if len(tasks) >= 2 else 0
        held = set(ranked[:count])
    return {"train": [s for s in steps if s.task not in held], "eval": [s for s in steps if s.task in held]}


def task_folds(tasks: Iterable[str], folds: int | None = None) -> list[list[str]]:
    """The tasks dealt into ``folds`` groups to hold out in turn (None or at least the task count: one task each,
    leave-one-task-out), in an order set by a hash of their names, so it does not depend on how they were listed."""
    ranked = sorted(set(tasks), key=lambda t: hashlib.sha256(t.encode()).hexdigest())
    count = len(ranked) if folds is None else max(1, min(folds, len(ranked)))
    return [sorted(ranked[i::count]) for i in range(count)]


def build_dataset(stores: Iterable[str | Path], eval_tasks: Iterable[str] | None = None,
                  eval_fraction: float = 0.25) -> dict[str, list[Step]]:
    """Read, deduplicate, scale and split the steps of ``stores`` (run store files or folders holding them)."""
    paths = store_paths(stores)
    if not paths:
        raise DatasetError("no run stores given (runs.sqlite files, or folders that hold them)")
    steps = scaled(dedupe(s for p in paths for s in steps_from_store(p)))
    return split_by_task(steps, eval_tasks, eval_fraction)


def store_paths(stores: Iterable[str | Path]) -> list[Path]:
    """The run store files named by ``stores``: files as given, folders searched for runs.sqlite."""
    paths = []
    for item in map(Path, stores):
        paths += sorted(item.rglob("runs.sqlite")) if item.is_dir() else [item]
    return paths


def scaled(steps: list[Step]) -> list[Step]:
    """The steps with their task's reward scale (task_scales) set."""
    scales = task_scales(steps)
    return [s.model_copy(update={"scale": scales[s.task]}) for s in steps]


def extend_dataset(splits: dict[str, list[Step]], stores: Iterable[str | Path]) -> dict[str, list[Step]]:
    """``splits`` with the steps of ``stores`` added (deduplicated, every task's scale measured again), held-out
    tasks staying held out: how on-policy rounds grow the dataset with the policy's own runs."""
    new = (s for p in store_paths(stores) for s in steps_from_store(p))
    steps = scaled(dedupe([*splits["train"], *splits["eval"], *new]))
    held = {s.task for s in splits["eval"]}
    return {"train": [s for s in steps if s.task not in held], "eval": [s for s in steps if s.task in held]}


def save_dataset(splits: dict[str, list[Step]], folder: str | Path) -> Path:
    """Write ``<folder>/<split>.jsonl`` and the same rows as a ``datasets`` DatasetDict (``<folder>/hf``)."""
    from datasets import Dataset, DatasetDict

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = {name: [_row(s) for s in splits.get(name, [])] for name in SPLITS}
    for name in SPLITS:
        write_atomic(folder / f"{name}.jsonl", "".join(json.dumps(r) + "\n" for r in rows[name]))
    DatasetDict({name: Dataset.from_list(rows[name]) if rows[name] else Dataset.from_dict({"step": []})
                 for name in SPLITS}).save_to_disk(str(folder / "hf"))
    return folder


def load_steps(folder: str | Path, split: str) -> list[Step]:
    """The steps of one split of a saved dataset (read from its JSONL)."""
    path = Path(folder) / f"{split}.jsonl"
    if not path.is_file():
        raise DatasetError(f"{path}: no such dataset split (build one with `python -m core.train dataset ...`)")
    return [Step.model_validate_json(json.loads(line)["step"]) for line in path.read_text().splitlines() if line]


def _row(step: Step) -> dict:
    """A flat row: the columns a trainer filters on, plus the whole step as JSON."""
    return {"step_id": step.step_id, "task": step.task, "block_kind": step.block_kind, "status": step.status,
            "gain": step.gain, "seconds": step.seconds, "has_op": step.op is not None, "step": step.model_dump_json()}
