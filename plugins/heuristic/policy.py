"""The heuristic policy: every MLE-STAR role done by rules, offline and deterministically, on scripts whose blocks
carry their own specs. It is also the fallback when another policy has nothing usable."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from core.cards import ModelCard
from core.errors import PluginError
from core.policy import BlockInfo, CandidateInfo, PlanRecord, TaskContext
from plugins.heuristic import draft, ensemble, plans, repair
from plugins.heuristic.recipe import ModelSpec, PreprocessSpec
from plugins.heuristic.render import (
    MARKER,
    block_spec,
    render_block,
    render_script,
    replace_block,
)

BASE_SCORE = re.compile(r"[Bb]ase (?:validation )?score:? ([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
RESERVED_FILES = {"train.csv", "valid.csv", "test.csv", "sample_submission.csv"}



class HeuristicPolicy:
    """Rule-based roles. Options: ``seed`` (int) overrides the task's seed in the scripts it writes."""

    name = "heuristic"

    def __init__(self, options: dict | None = None, *, task=None):
        options = dict(options or {})
        unknown = sorted(set(options) - {"seed"})
        if unknown:
            raise PluginError(f"policy heuristic: unknown option {unknown[0]!r} (known: seed)")
        seed = options.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise PluginError(f"policy heuristic: option 'seed' must be an integer, got {seed!r}")
        self.seed = seed
        self.task = task

    def _ctx(self, ctx: TaskContext) -> TaskContext:
        return ctx if self.seed is None else ctx.model_copy(update={"seed": self.seed})

    # --- retrieval and drafting ----------------------------------------------------------------------------------

    def summarize_search(self, ctx: TaskContext, results: list[dict], limit: int) -> list[ModelCard] | None:
        """The catalogue cards the results talk about, most mentioned first (ties: first mentioned)."""
        from retrieval.web import cards_from_results  # lazily: another plugin's module

        return cards_from_results(results, ctx.task_type, limit) or None

    def write_initial(self, ctx: TaskContext, card: ModelCard) -> str | None:
        ctx = self._ctx(ctx)
        spec = draft.initial_spec(ctx, card)
        return render_script(ctx, spec) if spec is not None else None

    def merge(self, ctx: TaskContext, base_code: str, reference_code: str) -> str | None:
        ctx = self._ctx(ctx)
        base, reference = repair.specs_of(base_code), repair.specs_of(reference_code)
        if not isinstance(base.get("model"), ModelSpec) or not isinstance(reference.get("model"), ModelSpec):
            return None
        model = draft.merged_model(ctx, base["model"], reference["model"], base.get("preprocess"))
        if model is None:
            return None
        return replace_block(base_code, "model", render_block(ctx, "model", model))

    # --- ablation and refinement ---------------------------------------------------------------------------------

    def simplify_block(self, ctx: TaskContext, code: str, block: BlockInfo) -> str | None:
        ctx = self._ctx(ctx)
        simple = repair.simpler_spec(ctx, block.kind, block_spec(block.source, block.kind))
        return _rendered(ctx, block, simple) if simple is not None else None

    def summarize_ablation(self, ctx: TaskContext, table: str) -> str:
        return summarize_table(ctx, table)

    def plan_refinement(self, ctx: TaskContext, code: str, block: BlockInfo, ablation: str,
                        history: list[PlanRecord], n: int) -> list[str]:
        ctx = self._ctx(ctx)
        spec = block_spec(block.source, block.kind)
        if spec is None or n <= 0:
            return []
        specs = repair.specs_of(code)
        model = specs.get("model") if isinstance(specs.get("model"), ModelSpec) else None
        preprocess = specs.get("preprocess") if isinstance(specs.get("preprocess"), PreprocessSpec) else None
        if block.kind == "preprocess":
            ops = plans.preprocess_ops(ctx, spec, model)
        elif block.kind == "model":
            ops = plans.model_ops(ctx, spec, preprocess)
        elif block.kind == "train":
            ops = plans.train_ops(ctx, spec, model)
        else:
            return []
        found = BASE_SCORE.search(ablation or "")
        base = float(found.group(1)) if found else None
        return plans.rank_ops(ops, history, base, ctx.maximize, n)

    def implement_plan(self, ctx: TaskContext, code: str, block: BlockInfo, plan: str) -> str | None:
        spec, new = self.specs_for(ctx, code, block, plan)
        if new is None or new == spec:
            return None
        return _rendered(self._ctx(ctx), block, new)

    def specs_for(self, ctx: TaskContext, code: str, block: BlockInfo, plan: str) -> tuple:
        """(the block's spec, the spec the plan's op makes of it); either is None when there is none (a block this
        policy did not write, a plan without an op, an op or args that do not fit the block)."""
        parsed = plans.parse_plan(plan)
        spec = block_spec(block.source, block.kind)
        if parsed is None or spec is None:
            return spec, None
        preprocess = repair.specs_of(code).get("preprocess")
        return spec, plans.apply_op(self._ctx(ctx), block.kind, spec, *parsed,
                                    preprocess if isinstance(preprocess, PreprocessSpec) else None)

    # --- debugging and checks ------------------------------------------------------------------------------------

    def debug(self, ctx: TaskContext, code: str, error: str) -> str | None:
        return repair.debug_script(self._ctx(ctx), code, error)

    def fix_leakage(self, ctx: TaskContext, code: str, findings: list[str]) -> str | None:
        return repair.rerender(self._ctx(ctx), code, ("load_data", "preprocess", "train"))

    def use_all_data(self, ctx: TaskContext, code: str, unused_files: list[str]) -> str | None:
        files = [f for f in unused_files if f.lower().endswith(".csv") and f not in RESERVED_FILES]
        files = [f for f in files if self._shares_a_column(ctx, f)]
        return repair.with_joins(self._ctx(ctx), code, files) if files else None

    def _shares_a_column(self, ctx: TaskContext, name: str) -> bool:
        """Whether the file has a column train.csv has too; unknown (no task to read it from): let the script check."""
        path = getattr(self.task, "public_files", {}).get(name) if self.task is not None else None
        if path is None or not Path(path).is_file():
            return True
        try:
            header = pd.read_csv(path, nrows=0).columns
        except Exception:  # noqa: BLE001 - not a table we can read: nothing to join
            return False
        known = {c.name for c in ctx.columns} | {ctx.id_column}
        return any(str(c) in known for c in header)

    # --- ensembling ----------------------------------------------------------------------------------------------

    def plan_ensemble(self, ctx: TaskContext, candidates: list[CandidateInfo], history: list[PlanRecord]) -> str | None:
        return ensemble.next_ensemble_plan(self._ctx(ctx), candidates, history)

    def implement_ensemble(self, ctx: TaskContext, candidates: list[CandidateInfo], plan: str) -> str | None:
        return ensemble.ensemble_script(self._ctx(ctx), candidates, plan)


def _rendered(ctx: TaskContext, block: BlockInfo, spec) -> str:
    """The block rendered from ``spec``, keeping any lines the block had above its marker (a module docstring)."""
    lines = block.source.splitlines()
    at = next((i for i, line in enumerate(lines) if MARKER.match(line)), 0)
    return "\n".join([*lines[:at], render_block(ctx, block.kind, spec)])


def summarize_table(ctx: TaskContext, table: str) -> str:
    """A few factual sentences from the ablation table: the base score, then each block's effect, largest first."""
    rows = _table_rows(table)
    base = None
    for row in rows:
        score, effect = _number(row.get("score")), _number(row.get("effect"))
        if score is not None and effect is not None:
            base = score + effect if ctx.maximize else score - effect
            break
    parts = [f"Base validation score {base:.6g} ({ctx.metric}, {'higher' if ctx.maximize else 'lower'} is better)."
             if base is not None else f"Metric {ctx.metric} ({'higher' if ctx.maximize else 'lower'} is better)."]
    measured = [r for r in rows if _number(r.get("effect")) is not None]
    measured.sort(key=lambda r: -abs(_number(r["effect"])))
    for i, row in enumerate(measured):
        effect = _number(row["effect"])
        action = row.get("action", "change")
        what = f"{'Removing' if action == 'remove' else 'Simplifying'} {row.get('block', '?')}"
        if abs(effect) < 1e-12:
            parts.append(f"{what} leaves the score unchanged ({row.get('score')}).")
        elif effect > 0:
            parts.append(f"{what} costs {effect:.4g} (score {row.get('score')})"
                         + (": it contributes most." if i == 0 else "."))
        else:
            parts.append(f"{what} improves the score by {-effect:.4g} (score {row.get('score')}): that block, as it "
                         "is, hurts and is worth reworking.")
    failed = [r for r in rows if _number(r.get("effect")) is None]
    for row in failed:
        parts.append(f"The variant of {row.get('block', '?')} failed ({row.get('status', 'error')}), so that block is "
                     "needed as written.")
    if not rows:
        parts.append("No ablation variant ran, so no block's contribution is known.")
    return " ".join(parts)


def _table_rows(table: str) -> list[dict[str, str]]:
    lines = [line.strip() for line in (table or "").splitlines() if line.strip().startswith("|")]
    if len(lines) < 2:
        return []
    header = [cell.strip().lower() for cell in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[1:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if all(set(cell) <= set("-: ") for cell in cells):
            continue  # the separator row
        rows.append(dict(zip(header, cells)))
    return rows


def _number(text) -> float | None:
    try:
        value = float(str(text).replace("+", "")) if text not in (None, "", "n/a") else None
    except ValueError:
        return None
    return value
