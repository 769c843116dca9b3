"""The policy interface: one method per agent role, plain data in and out.

The heuristic, OpenAI-compatible and local transformers policies all implement it; nodes call nothing else to plan
or write code. A method may return None to say "I have nothing for this" — the node then keeps what it had.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field

from core.cards import CardQuery, ModelCard


class ColumnInfo(BaseModel):
    name: str
    dtype: str  # "numeric" | "categorical" | "text" | "datetime" | "boolean"
    missing: float = 0.0  # share of missing values in train
    unique: int = 0
    integer: bool = False  # numeric and every value a whole number: a quantity, or a code (a hospital's number)


class AssetInfo(BaseModel):
    """A folder a script finds in ./input/ beside the CSVs (an image folder, or an archive unpacked into one)."""

    name: str  # the folder's name in ./input/
    archive: str = ""  # the archive it was unpacked from (also in ./input/ under that name), if any
    files: int = 0
    types: dict[str, int] = Field(default_factory=dict)  # file suffix ("" for none) -> files
    examples: list[str] = Field(default_factory=list)  # a few file paths, relative to ./input/


class ImageInfo(BaseModel):
    """Where each row's image is: ``./input/<folder>/<value of column><suffix>``, for training and test rows."""

    column: str
    suffix: str = ""  # "" when the column's values are file names already
    train_folder: str
    test_folder: str


class TaskContext(BaseModel):
    """What every role knows about the task (built once from the prepared data)."""

    name: str
    goal: str
    task_type: str
    metric: str
    maximize: bool
    proba: bool  # the metric reads probabilities
    target: str
    id_column: str
    prediction_columns: list[str]
    targets: list[str] = Field(default_factory=list)  # several columns to predict, one prediction column each
    #                                                   (multi-target, multi-label); empty: the one ``target``
    classes: list[str] = Field(default_factory=list)  # target labels as strings, classification only
    columns: list[ColumnInfo]  # feature columns of train.csv (target and id excluded)
    n_train: int
    n_valid: int
    n_test: int
    files: list[str]  # every file a script finds in ./input/
    seed: int = 0
    modality: str = "tabular"  # "tabular" | "text" | "image" | "mixed": what the rows' features are
    assets: list[AssetInfo] = Field(default_factory=list)
    images: ImageInfo | None = None
    gpus: int = 0  # GPUs one script may use (the executor's options); 0: CPU only
    budget_seconds: float | None = None  # the run's whole budget: sizes time slices inside a script (an Optuna
    #                                      study); None: not known (a context built outside a run)

    def output_kind(self) -> str:
        """What the prediction columns hold (the script contract): value, wide (one probability per class),
        positive (the positive class's probability), label, or multi (one column per target, each holding what
        that target's own column would: a value, the positive class's probability, or a label)."""
        if self.targets:
            return "multi"
        if self.task_type == "regression":
            return "value"
        if self.proba and len(self.prediction_columns) > 1:
            return "wide"
        if self.proba and len(self.classes) <= 2:
            return "positive"
        return "label"

    def for_target(self, target: str) -> TaskContext:
        """One of several targets as a task predicting it alone sees it: its own prediction column; the classes stay
        every target's, the order the scorer reads each column's labels in."""
        return self.model_copy(update={"target": target, "targets": [], "prediction_columns": [target]})

    def text_only(self) -> bool:
        """Every feature column is free text (TF-IDF features are then all there is, none of them negative)."""
        return bool(self.columns) and all(c.dtype == "text" for c in self.columns)

    def card_query(self) -> CardQuery:
        return CardQuery(task_type=self.task_type, goal=self.goal[:2000], metric=self.metric,
                         n_rows=self.n_train + self.n_valid, n_features=len(self.columns),
                         has_categorical=any(c.dtype in ("categorical", "text", "boolean") for c in self.columns),
                         has_missing=any(c.missing > 0 for c in self.columns), modality=self.modality,
                         text_columns=sum(c.dtype == "text" for c in self.columns),
                         has_images=self.images is not None)


class BlockInfo(BaseModel):
    """A code block as roles see it (mirrors ablation.Block without importing it)."""

    key: str
    kind: str
    source: str


class AblationEffect(BaseModel):
    """One ablation variant's outcome: ``effect`` > 0 means the block helps (the score got worse without it)."""

    block: str
    kind: str
    action: str = "remove"  # "remove" | "simplify"
    status: str = "ok"
    score: float | None = None
    effect: float | None = None  # None when the variant failed


class AblationView(BaseModel):
    """An ablation study as roles see it: the score of the script it was run on, each block's effect, and the
    summariser's sentences (empty before ``summarize_ablation`` ran). An LLM policy renders its own text from it."""

    base_score: float | None = None
    maximize: bool = True
    rows: list[AblationEffect] = Field(default_factory=list)
    text: str = ""

    def table(self) -> str:
        """Markdown table, the most helpful block first and failed variants last."""
        ranked = sorted(self.rows, key=lambda r: (r.effect is None, -(r.effect or 0.0)))
        lines = ["| block | kind | action | score | effect | status |", "|---|---|---|---|---|---|"]
        for row in ranked:
            score = "n/a" if row.score is None else f"{row.score:.6g}"
            effect = "n/a" if row.effect is None else f"{row.effect:+.6g}"
            lines.append(f"| {row.block} | {row.kind} | {row.action} | {score} | {effect} | {row.status} |")
        return "\n".join(lines)

    def described(self) -> str:
        """The summariser's text, else the table (what a prompt shows)."""
        return self.text or (self.table() if self.rows else "")


class PlanRecord(BaseModel):
    """A refinement or ensemble plan already tried, with what it scored (None: it failed)."""

    plan: str
    score: float | None
    status: str
    seconds: float = 0.0


class CandidateInfo(BaseModel):
    """A finished solution that an ensemble can combine (its predictions are in ./input/candidates/<name>/)."""

    name: str
    score: float
    model: str = ""


class WorkItem(BaseModel):
    """One thing the scheduler can do next with the time left: refine a solution track again (ablate its head, pick
    a block, try plans), draft another retrieved model (a new track), or run more ensemble rounds."""

    kind: str  # "refine" | "draft" | "ensemble"
    track: str = ""  # refine: the track whose head is refined
    card: str = ""  # draft: the model card's name
    facts: dict = Field(default_factory=dict)  # what the estimate may use: head score, blocks left, members, ...


class WorkOutcome(BaseModel):
    """A finished work item: how much it moved its score (metric units, positive = better) and what it cost."""

    item: WorkItem
    gain: float
    seconds: float


class Estimate(BaseModel):
    """Expected improvement of an item (metric units, positive = better; 0: nothing expected) and its cost."""

    gain: float
    seconds: float


class Policy(Protocol):
    name: str
    # True only for a policy whose scripts are the framework's own templates (the heuristic): any other policy's
    # code (an LLM's, a third party's) never runs unisolated unless the user sets executor isolation: none
    framework_code: bool = False

    def summarize_search(self, ctx: TaskContext, results: list[dict], limit: int) -> list[ModelCard] | None:
        """Retrieval summariser: web results (title, href, body) → model cards with example code."""

    def write_initial(self, ctx: TaskContext, card: ModelCard) -> str | None:
        """Initial-solution writer: a complete script following the script contract for this model card."""

    def merge(self, ctx: TaskContext, base_code: str, reference_code: str) -> str | None:
        """Merger: integrate the reference solution's model into the base (e.g. as an ensemble member)."""

    def simplify_block(self, ctx: TaskContext, code: str, block: BlockInfo) -> str | None:
        """Ablation-script writer: a simpler, still runnable replacement for ``block`` (None: removal only)."""

    def summarize_ablation(self, ctx: TaskContext, ablation: AblationView) -> str:
        """Ablation summariser: a few sentences on which blocks matter, from the study's rows."""

    def plan_refinement(self, ctx: TaskContext, code: str, block: BlockInfo, ablation: AblationView,
                        history: list[PlanRecord], n: int) -> list[str]:
        """Planner: up to ``n`` new plans for ``block``, each different from those in ``history`` (plans tried on
        this block before, in this step and earlier ones)."""

    def implement_plan(self, ctx: TaskContext, code: str, block: BlockInfo, plan: str) -> str | None:
        """Block implementer: the new source of ``block`` only (it is spliced back by its span)."""

    def debug(self, ctx: TaskContext, code: str, error: str) -> str | None:
        """Debugger: the whole script fixed for the error (traceback tail or status message)."""

    def plan_ensemble(self, ctx: TaskContext, candidates: list[CandidateInfo], history: list[PlanRecord]) -> str | None:
        """Ensemble planner: how to combine the candidates' predictions, different from earlier plans."""

    def implement_ensemble(self, ctx: TaskContext, candidates: list[CandidateInfo], plan: str) -> str | None:
        """Ensemble implementer: a script that reads ./input/candidates/<name>/{val_predictions,submission}.csv
        and writes the combined val_predictions.csv and submission.csv."""

    def fix_leakage(self, ctx: TaskContext, code: str, findings: list[str]) -> str | None:
        """Data-leakage checker: the script rewritten so nothing is fitted on validation or test data."""

    def use_all_data(self, ctx: TaskContext, code: str, unused_files: list[str]) -> str | None:
        """Data-usage checker: the script extended to use provided files it ignores."""

    def estimate(self, ctx: TaskContext, item: WorkItem, done: list[WorkOutcome]) -> Estimate | None:
        """Scheduler: the expected gain and seconds of ``item``, given the items finished so far in this run (None:
        no opinion; the heuristic's estimate is used). The scheduler runs the item with the most gain per second."""
