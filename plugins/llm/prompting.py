"""Role prompts: the template files under ``prompts/`` (or a plugin's override from ``register_prompts``), the text
every role shares (the task, the script contract), and fitting a prompt into a role's character budget by cutting
the parts that matter least first."""

from __future__ import annotations

import importlib.util
import re
import string
from dataclasses import dataclass
from importlib import resources

from core.errors import PluginError
from core.policy import BlockInfo, CandidateInfo, PlanRecord, TaskContext

ROLES = ("summarize_search", "write_initial", "merge", "simplify_block", "summarize_ablation", "plan_refinement",
         "implement_plan", "debug", "plan_ensemble", "implement_ensemble", "fix_leakage", "use_all_data")
SHARED = ("system", "retry")  # not roles: the system message and the message that follows an unusable reply

COMMON_FIELDS = ("task", "goal", "contract")
FIELDS: dict[str, tuple[str, ...]] = {
    "summarize_search": ("results", "limit"),
    "write_initial": ("model_name", "model_why", "example_code", "skeleton"),
    "merge": ("base_code", "reference_code"),
    "simplify_block": ("code", "block", "block_kind"),
    "summarize_ablation": ("table",),
    "plan_refinement": ("code", "block", "block_kind", "ablation", "history", "n"),
    "implement_plan": ("code", "block", "block_kind", "plan"),
    "debug": ("code", "error"),
    "plan_ensemble": ("candidates", "history"),
    "implement_ensemble": ("candidates", "plan", "skeleton"),
    "fix_leakage": ("code", "findings"),
    "use_all_data": ("code", "unused_files"),
    "system": (),
    "retry": ("error",),
}


def builtin_template(name: str) -> str:
    return resources.files("plugins.llm").joinpath("prompts", f"{name}.md").read_text(encoding="utf-8")


def templates(overrides: dict[str, str], owner=lambda name: "?") -> dict[str, str]:
    """Every role's template: a plugin's override (``registry.prompts``) or the built-in file. An override that uses
    a field its role does not have is an error naming the plugin; overrides for unknown names are ignored."""
    out = {}
    for name in (*ROLES, *SHARED):
        text = overrides.get(name)
        if text is None:
            out[name] = builtin_template(name)
            continue
        allowed = set(FIELDS[name]) | (set(COMMON_FIELDS) if name in ROLES else set())
        try:
            used = {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
        except ValueError as exc:
            raise PluginError(f"prompt '{name}' registered by plugin {owner(name)}: not a str.format template "
                              f"({exc}; write literal braces as {{{{ and }}}})") from None
        unknown = sorted(f for f in used if f.split(".")[0].split("[")[0] not in allowed)
        if unknown:
            raise PluginError(f"prompt '{name}' registered by plugin {owner(name)} uses unknown field "
                              f"{{{unknown[0]}}} (fields: {', '.join(sorted(allowed)) or 'none'})")
        out[name] = text
    return out


# --- fitting a prompt into its budget ---------------------------------------------------------------------------

@dataclass
class Part:
    """A field value that may be shortened: ``keep`` says which part survives (head, tail, or both ends)."""

    text: str
    keep: str = "head"  # "head" | "tail" | "ends"
    floor: int = 200  # never cut below this many characters

    def cut(self, size: int) -> str:
        text = self.text
        size = max(size, self.floor)
        if len(text) <= size:
            return text
        note = "\n[... {} characters cut ...]\n"
        room = max(size - len(note) - 6, 0)
        if self.keep == "tail":
            kept = _from_line(text[len(text) - room:])
            return note.format(len(text) - len(kept)).lstrip("\n") + kept
        if self.keep == "ends":
            head, tail = _to_line(text[: room // 2]), _from_line(text[len(text) - room // 2:])
            return head + note.format(len(text) - len(head) - len(tail)) + tail
        kept = _to_line(text[:room])
        return kept + note.format(len(text) - len(kept)).rstrip("\n")


def _to_line(text: str) -> str:
    """``text`` cut back to its last whole line (when that keeps most of it)."""
    at = text.rfind("\n")
    return text[:at] if at > len(text) // 2 else text


def _from_line(text: str) -> str:
    at = text.find("\n")
    return text[at + 1:] if 0 <= at < len(text) // 2 else text


def render(template: str, fields: dict[str, str | Part], budget: int) -> str:
    """The template filled in, its shrinkable parts cut (largest first) until it fits ``budget`` characters or every
    part is at its floor (then it is sent over budget: the fixed text alone does not fit)."""
    sizes = {k: len(v.text) for k, v in fields.items() if isinstance(v, Part)}

    def fill() -> str:
        values = {k: (v.cut(sizes[k]) if isinstance(v, Part) else v) for k, v in fields.items()}
        return template.format(**values)

    text = fill()
    while len(text) > budget:
        room = {k: sizes[k] - fields[k].floor for k in sizes if sizes[k] > fields[k].floor}
        if not room:
            break
        biggest = max(room, key=lambda k: sizes[k])
        excess = len(text) - budget
        # take the excess from the largest part, but never more than half of it at once
        sizes[biggest] = max(fields[biggest].floor, sizes[biggest] - max(excess, 1), sizes[biggest] // 2)
        text = fill()
    return text


# --- what every role knows --------------------------------------------------------------------------------------

def task_text(ctx: TaskContext, max_columns: int = 40) -> str:
    direction = "higher is better" if ctx.maximize else "lower is better"
    targets = (f"Target columns ({len(ctx.targets)}, one prediction column each): "
               f"{', '.join(map(repr, ctx.targets))}." if ctx.targets else f"Target column: {ctx.target!r}.")
    lines = [f"Task: {ctx.name} ({ctx.task_type}, {ctx.modality} data). Metric: {ctx.metric} ({direction}).",
             f"{targets} Id column: {ctx.id_column!r}."]
    if ctx.classes:
        shown = ", ".join(map(repr, ctx.classes[:20])) + (", ..." if len(ctx.classes) > 20 else "")
        lines.append(f"Classes ({len(ctx.classes)}): {shown}.")
    columns = [f"{c.name} ({c.dtype}{f', {c.missing:.0%} missing' if c.missing else ''})"
               for c in ctx.columns[:max_columns]]
    more = f", and {len(ctx.columns) - max_columns} more" if len(ctx.columns) > max_columns else ""
    lines.append(f"Feature columns ({len(ctx.columns)}): {', '.join(columns)}{more}.")
    lines.append(f"Rows: {ctx.n_train} in train.csv, {ctx.n_valid} in valid.csv, {ctx.n_test} in test.csv.")
    for asset in ctx.assets[:10]:
        types = ", ".join(f"{n} {t or '(no suffix)'}" for t, n in list(asset.types.items())[:4])
        source = f", unpacked from {asset.archive}" if asset.archive else ""
        lines.append(f"Folder ./input/{asset.name}/ ({asset.files} files: {types}{source}), e.g. "
                     f"{', '.join(asset.examples)}.")
    if ctx.images:
        im = ctx.images
        lines.append(f"Each row's image: ./input/{im.train_folder}/<{im.column}>{im.suffix} for train.csv and "
                     f"valid.csv rows, ./input/{im.test_folder}/<{im.column}>{im.suffix} for test.csv rows.")
    return "\n".join(lines)


def _prediction_text(ctx: TaskContext) -> str:
    cols = ", ".join(ctx.prediction_columns)
    kind = ctx.output_kind()
    if kind == "multi":
        each = ("its predicted value" if ctx.task_type == "regression" else
                f"the probability that it is {ctx.classes[-1] if ctx.classes else 1!r}" if ctx.proba else
                "its predicted label")
        what = f"one column per target, each holding {each}"
    elif kind == "value":
        what = f"the predicted value of {ctx.target}"
    elif kind == "wide":
        what = "the probability of each class, one column per class named by its label"
    elif kind == "positive":
        what = f"the probability that {ctx.target} is {ctx.classes[-1] if ctx.classes else 1!r}"
    else:
        what = f"the predicted label of {ctx.target}"
    return f"columns exactly {ctx.id_column}, {cols} ({what})"


def contract_text(ctx: TaskContext, timeout: float | None) -> str:
    """The script contract a solution script must follow, stated for this task."""
    folders = {a.name for a in ctx.assets} | {a.archive for a in ctx.assets if a.archive}
    extra = [f for f in ctx.files if f not in ("train.csv", "valid.csv", "test.csv", "sample_submission.csv")
             and f not in folders]
    limits = f"; finish within {int(timeout)} seconds." if timeout else "."
    target = (f"the targets {', '.join(map(repr, ctx.targets))}" if ctx.targets else f"the target {ctx.target!r}")
    lines = [
        "Script contract (follow it exactly):",
        (f"- Read ./input/train.csv (features and {target}), ./input/valid.csv (validation rows, "
         "same columns) and ./input/test.csv (features only, no target)."),
        "- Fit models, encoders, scalers and imputers on train.csv rows only, never on valid.csv or test.csv.",
        ("- Write val_predictions.csv (one row per valid.csv row) and submission.csv (one row per test.csv row), "
         f"each with {_prediction_text(ctx)}, index=False."),
        f"- Print one line: Final Validation Performance: <{ctx.metric} on valid.csv as a float>",
        (f"- One Python file using {', '.join(libraries(ctx))}; {devices_text(ctx)}; no network, no pip, no "
         "downloads, no exit(), no try/except that hides errors" + limits),
    ]
    if extra:
        lines.insert(2, f"- Other files in ./input/: {', '.join(extra[:20])}.")
    if ctx.assets:
        lines.insert(2, f"- Read-only folders in ./input/: {', '.join(a.name + '/' for a in ctx.assets[:10])} "
                        "(see the task above for what they hold).")
    return "\n".join(lines)


# what a script may import, by the data it reads (offered only where installed)
LIBRARIES = {"tabular": ("pandas", "numpy", "scikit-learn", "lightgbm"),
             "text": ("pandas", "numpy", "scikit-learn", "lightgbm", "scipy"),
             "image": ("pandas", "numpy", "scikit-learn", "lightgbm", "Pillow", "torch", "torchvision", "timm"),
             "mixed": ("pandas", "numpy", "scikit-learn", "lightgbm", "scipy", "Pillow", "torch", "torchvision")}
_MODULES = {"scikit-learn": "sklearn", "Pillow": "PIL"}


def devices_text(ctx: TaskContext) -> str:
    if ctx.gpus:
        return ("one GPU is visible as cuda:0 (use it for neural networks when torch.cuda.is_available(), else the "
                "CPU)")
    return "CPU only (no GPU)"


def libraries(ctx: TaskContext) -> list[str]:
    """The libraries a script for this task may use: those its kind of data wants that are installed here."""
    wanted = LIBRARIES.get(ctx.modality, LIBRARIES["tabular"])
    return [name for name in wanted if importlib.util.find_spec(_MODULES.get(name, name)) is not None]


def ensemble_contract(ctx: TaskContext, candidates: list[CandidateInfo]) -> str:
    names = ", ".join(c.name for c in candidates)
    return "\n".join([
        "Ensemble script contract (follow it exactly):",
        (f"- For each candidate name in [{names}] read ./input/candidates/<name>/val_predictions.csv and "
         f"./input/candidates/<name>/submission.csv; both have {_prediction_text(ctx)}."),
        (f"- ./input/valid.csv holds the validation rows with the true "
         f"{', '.join(map(repr, ctx.targets)) if ctx.targets else repr(ctx.target)}; "
         "./input/sample_submission.csv lists the test ids."),
        ("- Write val_predictions.csv (one row per valid.csv id) and submission.csv (one row per "
         "sample_submission.csv id) with the same columns, index=False."),
        f"- Print one line: Final Validation Performance: <{ctx.metric} of the combined validation predictions>",
        "- Any model fitted on validation predictions must be scored out-of-fold (cross_val_predict).",
    ])


def base_score_text(ctx: TaskContext, base_score: float | None) -> str:
    """"Base validation score X (metric, higher is better)." ("" without a score)."""
    if base_score is None:
        return ""
    return f"Base validation score {base_score:.6g} ({ctx.metric}, {'higher' if ctx.maximize else 'lower'} is better)."


def results_text(results: list[dict], body_chars: int = 600) -> str:
    out = []
    for i, r in enumerate(results, 1):
        body = " ".join(str(r.get("body", "")).split())[:body_chars]
        out.append(f"[{i}] {r.get('title', '')} ({r.get('href', '')})\n{body}")
    return "\n\n".join(out)


def history_text(history: list[PlanRecord], maximize: bool, limit: int = 12) -> str:
    """Earlier plans with their scores, best first, failures last."""
    if not history:
        return "(none yet)"
    scored = sorted((h for h in history if h.score is not None), key=lambda h: -h.score if maximize else h.score)
    failed = [h for h in history if h.score is None]
    lines = [f"- score {h.score:.6g}: {h.plan}" for h in scored] + [f"- {h.status}: {h.plan}" for h in failed]
    return "\n".join(lines[:limit])


def candidates_text(candidates: list[CandidateInfo]) -> str:
    return "\n".join(f"- {c.name}: validation score {c.score:.6g}{f' ({c.model})' if c.model else ''}"
                     for c in candidates)


SPEC = re.compile(r"^([ \t]*#[ \t]*\[block:[ \t]*\w+[ \t]*\])[ \t]*\{.*\}[ \t]*$", re.MULTILINE)


def without_specs(code: str) -> str:
    """Block markers without the JSON spec a heuristic script keeps on them: noise to a model, which copies it, and
    stale once the model has rewritten the block."""
    return SPEC.sub(r"\1", code)


def block_context(code: str, block: BlockInfo) -> str:
    """The script with the target block's lines replaced by one placeholder line (the block is shown on its own)."""
    at = code.find(block.source)
    if at < 0 or not block.source.strip():
        return code
    indent = block.source[: len(block.source) - len(block.source.lstrip())].split("\n")[-1]
    return code[:at] + f"{indent}# <<< the {block.kind} block shown below goes here >>>" + \
        code[at + len(block.source):]
