"""The refinement plan catalogue: block-level operations per block kind, their plan texts, and applying a plan.

A plan is a sentence plus a machine tag, ``... (op: NAME {json args})``; the implementer parses the tag back and
applies it to the spec on the block's marker line. Candidates are ordered by a fixed priority adjusted by the
plans already tried: a move that helped is pushed further in the same direction first, the opposite of a move
that hurt comes next, and ops that failed sink.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from core.policy import BlockInfo, PlanRecord, TaskContext
from space import families, images, text
from space.draft import family_member, starting_params
from space.render import block_spec, column_roles, describe_encoding, encoder_key, rendered, specs_of
from space.specs import ModelSpec, PreprocessSpec, TrainSpec, TuneSpec

# Every op name apply_op knows (an action format that validates op names should take them from here).
OP_NAMES = ("set_preprocess", "set_params", "set_target", "swap_model", "add_member", "drop_member", "set_train",
            "tune", "set_images")
TAG = re.compile(r"\(op: (\w+) (\{.*\})\)\s*$", re.DOTALL)
MAX_MEMBERS = 3
MAX_STRENGTH = 3
TUNE_SECONDS = 30.0  # the `tune` op's first time slice: a quarter of the examples' 120 s run timeout
TUNE_SHARE = 0.1  # ... and at most this share of the run's budget: every later script built on a tuned member
#                  runs its study again (biopsy at 120 s: a 30 s study on extra trees ran into the end of the search
#                  and timed out; chile-vote: one gained 0.0003 log loss and made the next three steps 20 s each)
TUNE_MIN_SECONDS = 10.0  # a shorter study, split over the search's folds, runs a handful of trials: not offered
TUNE_STALL_BONUS = 0.15  # per plan tried on the block since the last one that helped: tuning rises as moves stall


def tune_seconds(ctx: TaskContext, current: float | None = None) -> float:
    """The time slice of a `tune` op: the first study's, or twice the ``current`` one's, within the budget's share."""
    cap = TUNE_SHARE * ctx.budget_seconds if ctx.budget_seconds else 600.0
    return min(TUNE_SECONDS if current is None else 2 * current, 600.0, cap)


@dataclass(frozen=True)
class Op:
    name: str
    args: dict
    text: str
    priority: float
    opposite: str = ""  # the group pointing the other way, if any
    after: tuple[str, ...] = field(default=())  # a continuation: offered only when one of these groups helped

    @property
    def group(self) -> str:
        return group_of(self.name, self.args)

    @property
    def tag(self) -> str:
        return f"(op: {self.name} {json.dumps(self.args, sort_keys=True)})"

    @property
    def plan(self) -> str:
        return f"{self.text} {self.tag}"


def parse_plan(plan: str) -> tuple[str, dict] | None:
    """(op name, args) from a plan's tag; None for plans without one (e.g. written by an LLM)."""
    match = TAG.search(plan or "")
    if not match:
        return None
    try:
        args = json.loads(match.group(2))
    except ValueError:
        return None
    return (match.group(1), args) if isinstance(args, dict) else None


def _key(name: str, args: dict) -> str:
    return f"{name} {json.dumps(args, sort_keys=True)}"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


# --- candidates per block kind ----------------------------------------------------------------------------------

def code_candidates(ctx: TaskContext, spec: PreprocessSpec) -> list:
    """Integer columns that may be codes rather than quantities, the most distinct values first: at least 20 values
    (fewer are more often ordered scales, such as biopsy's ten grades or doctor-visits' years of schooling) and at
    most one per 5 training rows (so each category has rows to learn from). Whether one is a code, the validation
    decides: political-information's interviewer (115 numbers) read as a category took its linear draft's log loss
    from 1.379 to 1.359 over a run's three folds, while medicare-stay's hospital number (53) changed nothing beyond
    the folds' noise."""
    numeric = set(column_roles(ctx, spec.as_categories)["numeric"])
    found = [c for c in ctx.columns if c.name in numeric and c.integer and 20 <= c.unique <= ctx.n_train // 5]
    return sorted(found, key=lambda c: -c.unique)


def preprocess_ops(ctx: TaskContext, spec: PreprocessSpec, model: ModelSpec | None) -> list[Op]:
    roles = column_roles(ctx, spec.as_categories)
    members = model.members if model else []
    scale_sensitive = any(families.needs_scaling(m.estimator) and not m.scale for m in members)
    one_hot_wanted = any(families.wants_one_hot(m.estimator) for m in members)
    nan_ok = bool(members) and all(families.handles_missing(m.estimator) or m.impute for m in members)
    has_missing = any(c.missing > 0 for c in ctx.columns if c.dtype != "text")  # text gaps become empty strings
    # TF-IDF of text alone: no numeric column for a scaler to act on
    numbers = not (ctx.text_only() and text.sparse_features(ctx, spec))
    ops: list[Op] = []

    def change(field_name: str, value, says: str, priority: float, **kw) -> None:
        if getattr(spec, field_name) != value:
            ops.append(Op("set_preprocess", {field_name: value}, says, priority, **kw))

    if scale_sensitive and numbers:
        change("scaling", "standard", "Standardise the numeric features (zero mean, unit variance) so the "
               "scale-sensitive model weighs them equally.", 0.9 if spec.scaling == "none" else 0.35)
        change("scaling", "quantile", "Map the numeric features to normal quantiles (fitted on the training rows): "
               "robust to outliers and skew for the scale-sensitive model.", 0.6)
        change("scaling", "robust", "Scale the numeric features by median and interquartile range, so outliers "
               "do not dominate the scale.", 0.45)
    if roles["categorical"]:
        one_hot = describe_encoding(encoder_key(ctx, spec, "onehot"))
        change("encoding", "onehot", f"Encode categorical columns as {one_hot} instead of {spec.encoding} codes.",
               0.75 if one_hot_wanted else 0.4)
        change("encoding", "target", "Encode categorical columns by their cross-fitted mean target (fitted on the "
               "training rows with 5 folds), which carries the signal of high-cardinality columns.", 0.55)
        change("encoding", "count", "Encode categorical columns by how often each category occurs in the "
               "training rows.", 0.35)
        change("encoding", "ordinal", "Encode categorical columns as ordinal codes (unseen: -1).", 0.3)
        if spec.encoding != "count":
            change("count_features", True, "Add a frequency column per categorical column (how often the category "
                   "occurs in the training rows), keeping the current encoding.", 0.5)
    for rank, column in enumerate(code_candidates(ctx, spec)[:2]):
        args: dict = {"as_categories": [*spec.as_categories, column.name]}
        encoded = "encoded like the other categorical columns"
        if column.unique > 20 and spec.encoding in ("onehot", "ordinal"):  # one-hot keeps 20 codes; ordinal, none
            args["encoding"] = "target"
            encoded = "with every categorical column encoded by its cross-fitted mean target (too many values for "\
                      "one-hot codes)"
        ops.append(Op("set_preprocess", args, f"Read the integer column {column.name!r} ({column.unique} distinct "
                      f"values) as a category, not a quantity, {encoded}: a number that names an interviewer, a "
                      "hospital or a region says which, not how much.", 0.6 if rank == 0 else 0.45))
    if spec.as_categories:
        change("as_categories", [], "Read the integer columns as quantities again, not as categories.", 0.15)
    if has_missing:
        change("missing_indicators", True, "Add a 0/1 missing-value indicator for every numeric column with gaps, "
               "so the model can use missingness itself as a signal.", 0.6)
        change("missing_indicators", False, "Drop the missing-value indicator columns.", 0.15)
        now = {"none": "leaving them to the model", "constant": "filling them with 0"}.get(
            spec.impute, f"the training {spec.impute.replace('_', ' ')}")
        for strategy, why in (("mean", "the training mean"), ("most_frequent", "the training most frequent value"),
                              ("constant", "0"), ("median", "the training median")):
            change("impute", strategy, f"Fill numeric gaps with {why} instead of {now}.", 0.3)
        if nan_ok:
            change("impute", "none", "Leave numeric gaps as they are: every model here handles missing values "
                   "natively, and imputing hides where values were missing.", 0.45)
    if roles["numeric"]:
        change("log1p_skewed", True, "Apply log1p to the non-negative numeric columns that are right-skewed "
               "(skew > 1 in the training rows), to tame long tails.", 0.65 if scale_sensitive else 0.45)
        change("log1p_skewed", False, "Stop applying log1p to skewed columns.", 0.15)
    if len(roles["numeric"]) >= 2:
        if spec.pair_top == 0:
            change("pair_top", 4, "Add products and ratios of every pair among the 4 numeric columns most related "
                   "to the target (F-test on the training rows) as interaction features.", 0.55)
        else:
            more = min(len(roles["numeric"]), spec.pair_top + 2)
            if more > spec.pair_top:
                change("pair_top", more, f"Widen the interaction features to every pair among the top {more} "
                       "numeric columns.", 0.3, after=("preprocess.pairs+",))
            change("pair_top", 0, "Drop the pairwise product and ratio features.", 0.15)
        if spec.pair_top >= 2:
            change("pair_differences", True, f"Add the differences a - b of every pair among the top {spec.pair_top} "
                   "numeric columns to the products and ratios (linear models and trees find sums and contrasts "
                   "hard to build themselves).", 0.45)
            change("pair_differences", False, "Drop the pairwise difference features.", 0.15)
        else:
            ops.append(Op("set_preprocess", {"pair_differences": True, "pair_top": 4}, "Add products, ratios and "
                          "differences of every pair among the 4 numeric columns most related to the target (F-test "
                          "on the training rows) as interaction features.", 0.5))
    if roles["categorical"] and roles["numeric"]:
        if spec.group_stats == 0:
            change("group_stats", 1, "Add group statistics for the categorical column most related to the target: "
                   "per category, the mean and standard deviation of the 3 numeric columns most related to the "
                   "target, and each row's distance from its category's mean (all fitted on the training rows).",
                   0.5)
        else:
            more = min(3, spec.group_stats + 1)
            if more > spec.group_stats and len(roles["categorical"]) > spec.group_stats:
                change("group_stats", more, f"Widen the group statistics to the {more} categorical columns most "
                       "related to the target.", 0.3, after=("preprocess.group_stats+",))
            change("group_stats", 0, "Drop the group-statistics features.", 0.15)
    if roles["numeric"] and one_hot_wanted:
        change("splines", True, "Add cubic B-spline bases (3 knots at training quantiles) of the numeric columns "
               "with spread-out values beside the columns themselves, so the linear model can fit smooth curved "
               "effects.",
               0.65 if ctx.n_train < 2000 else 0.45)
    if spec.splines:
        change("splines", False, "Drop the spline bases: the numeric columns enter the model as they are.", 0.3)
    if roles["text"]:
        ops += text_ops(ctx, spec, members)
    if roles["datetime"]:
        change("datetime_parts", not spec.datetime_parts, "Turn date columns into calendar parts." if not
               spec.datetime_parts else "Drop the date columns instead of their calendar parts.", 0.25)
    if spec.images is not None and ctx.images is not None:
        ops += [Op("set_images", args, text, priority)
                for args, text, priority in images.image_ops(ctx, spec.images, members)]
    return ops


def text_ops(ctx: TaskContext, spec: PreprocessSpec, members: list) -> list[Op]:
    """Another text mode (only one every member can read: no dense-only model beside TF-IDF, no naive Bayes
    without it), and the TF-IDF knobs."""
    ops: list[Op] = []
    text_task = ctx.modality in text.TEXT_TASKS
    # on a text task, TF-IDF is the representation to beat: leaving it is a long shot
    other = 0.2 if text_task and spec.text == "tfidf" else 0.4
    # a table's long-text column: TF-IDF after the modes offered before it, which keep their order
    modes = (("tfidf", "TF-IDF of word 1-2-grams and character 2-5-grams fitted on the training rows (a sparse "
                       "matrix, stacked with the other columns)", 0.6 if text_task else 0.35),
             ("hash", "length, word count and 32 hashed token counts", other),
             ("stats", "length and word count only", other), ("drop", "nothing (drop them)", other))
    for mode, why, priority in modes:
        if mode == spec.text or (mode == "drop" and ctx.text_only()) or (mode == "tfidf" and not members):
            continue  # dropping the only features leaves nothing to fit; unknown models may not read sparse input
        changes = {"text": mode}
        if mode == "tfidf" and spec.scaling == "none" and column_roles(ctx)["numeric"]:
            changes["scaling"] = "standard"  # as the drafts do: no member then needs a scaler of its own
        if all(text.fits(ctx, m, spec.model_copy(update=changes)) for m in members):
            ops.append(Op("set_preprocess", changes, f"Turn free-text columns into {why}.", priority))
    if text.sparse_features(ctx, spec):
        chars = ("Drop the character n-grams: word 1-2-grams only (fewer, sparser features)." if spec.tfidf_chars
                 else "Add character 2-5-grams (within word boundaries) beside the word n-grams: spelling, "
                      "punctuation and word endings carry style.")
        ops.append(Op("set_preprocess", {"tfidf_chars": not spec.tfidf_chars}, chars, 0.45))
        more, fewer = min(200_000, spec.tfidf_features * 2), max(1_000, spec.tfidf_features // 2)
        if more != spec.tfidf_features:
            ops.append(Op("set_preprocess", {"tfidf_features": more}, f"Keep up to {more:,} n-grams of each kind "
                          f"(now {spec.tfidf_features:,}): rarer words and phrases too.", 0.35))
        if fewer != spec.tfidf_features:
            ops.append(Op("set_preprocess", {"tfidf_features": fewer}, f"Keep only the {fewer:,} most frequent "
                          f"n-grams of each kind (now {spec.tfidf_features:,}): less noise, faster fits.", 0.25))
    return ops


def model_ops(ctx: TaskContext, spec: ModelSpec, preprocess: PreprocessSpec | None) -> list[Op]:
    ops: list[Op] = []
    for index, member in enumerate(spec.members):
        weight = 1.0 if index == 0 else 0.6
        title = families.title_of(member.estimator) + (f" (member {index + 1})" if len(spec.members) > 1 else "")
        current = families.current_params(member.estimator, member.params)
        for rank, name in enumerate(families.moves_for(member.estimator)):
            move = families.MOVES[name]
            group = f"model.{index}.{name}"
            opposite = f"model.{index}.{move.opposite}" if move.opposite else ""
            for strength in range(1, MAX_STRENGTH + 1):
                changed = {k: v for k, v in (move.change(current, strength, ctx) or {}).items()
                           if current.get(k) != v}
                if not changed:
                    break
                was = ", ".join(f"{k} {_fmt(current.get(k))} → {_fmt(v)}" for k, v in sorted(changed.items()))
                step = "" if strength == 1 else f" ({'twice' if strength == 2 else 'three times'} as far as the first step)"
                ops.append(Op("set_params", {"member": index, "move": name, "strength": strength, "params": changed},
                              f"{title}: {move.says}{step} — {was}.", weight * (0.8 - 0.03 * rank),
                              opposite=opposite, after=(group,) if strength > 1 else ()))
        if ctx.task_type == "regression":
            for target, why in (("log1p", ("a signed log1p of the target, predictions mapped back with expm1 (fits "
                                           "relative errors; suits skewed, positive targets)")),
                                ("standard", "a standardised target"), ("none", "the raw target")):
                if target != member.target and not (target == "standard" and not families.needs_scaling(member.estimator)):
                    priority = 0.55 if (target == "log1p" and ctx.metric == "rmsle") else 0.35
                    ops.append(Op("set_target", {"member": index, "target": target},
                                  f"{title}: train on {why}.", weight * priority))
        space = families.search_space(member.estimator)
        seconds = tune_seconds(ctx, member.tune.seconds if member.tune else None)
        # a study scores one target; "for longer" must be longer than the member's own
        if (space and families.installed("optuna") and not ctx.targets and seconds >= TUNE_MIN_SECONDS
                and (member.tune is None or seconds > member.tune.seconds)):
            names = ", ".join(space)
            if member.tune is None:
                ops.append(Op("tune", {"member": index, "seconds": seconds}, f"{title}: tune {names} with an Optuna "
                              f"TPE study for {seconds:g} s, each trial scored by 3-fold cross-validation on the "
                              "training rows only (never the validation rows), then fit the best parameters; a strong "
                              "move once single-parameter changes stop helping.", weight * 0.45))
            else:
                ops.append(Op("tune", {"member": index, "seconds": seconds}, f"{title}: tune {names} for longer "
                              f"({seconds:g} s instead of {member.tune.seconds:g} s): more trials of the Optuna study.",
                              weight * 0.4, after=(f"model.{index}.tune",)))
    present = {families.family_name(m.estimator) for m in spec.members}
    readable = [f for f in families.swap_targets(ctx, present)
                if text.fits(ctx, family_member(ctx, f, preprocess), preprocess)]
    for rank, family in enumerate(readable):
        params = _params_text(starting_params(ctx, family, family.defaults, preprocess))
        ops.append(Op("swap_model", {"member": 0, "estimator": family.path(ctx.task_type)},
                      f"Replace {families.title_of(spec.members[0].estimator)} with {families.title_of(family.path(ctx.task_type))} "
                      f"({params}), a different inductive bias for this data.",
                      0.4 - 0.02 * rank))
        if len(spec.members) < MAX_MEMBERS:
            ops.append(Op("add_member", {"estimator": family.path(ctx.task_type)},
                          f"Add {families.title_of(family.path(ctx.task_type))} ({params}) to the blend with equal "
                          "weight: averaging models that err differently lowers the variance.",
                          0.38 - 0.02 * rank))
    if len(spec.members) > 1:
        for index, member in enumerate(spec.members):
            ops.append(Op("drop_member", {"member": index},
                          f"Drop {families.title_of(member.estimator)} (member {index + 1}) from the blend.",
                          0.2))
    return ops


def _params_text(params: dict) -> str:
    shown = [f"{k}={_fmt(v)}" for k, v in params.items()
             if k not in ("verbose", "probability", "verbosity", "logging_level", "allow_writing_files")]
    return ", ".join(shown) if shown else "default settings"


def train_ops(ctx: TaskContext, spec: TrainSpec, model: ModelSpec | None) -> list[Op]:
    members = model.members if model else []
    # several targets: each member is wrapped once per target, so neither stopping nor calibration reaches it
    stoppable = not ctx.targets and any(
        f.early_stopping for f in map(families.family_of, (m.estimator for m in members)) if f)
    ops: list[Op] = []

    def change(changes: dict, text: str, priority: float, **kw) -> None:
        if any(getattr(spec, k) != v for k, v in changes.items()):
            ops.append(Op("set_train", changes, text, priority, **kw))

    calibrating = spec.calibration != "none" and ctx.task_type == "classification"
    if stoppable and not calibrating:
        change({"early_stopping": True}, "Choose the number of boosting rounds (or epochs) by early stopping on "
               + ("each bag's held-out fold." if spec.folds > 1 else
                  f"{spec.stop_fraction:.0%} of the training rows held out (never on validation rows)."), 0.7)
        change({"early_stopping": False}, "Train for the full number of rounds, without early stopping.", 0.2)
    if spec.folds == 1:
        change({"folds": 5}, "Bag the model over 5 folds of the training rows: one copy per fold, predictions "
               "averaged, which lowers variance.", 0.6)
        change({"folds": 3}, "Bag the model over 3 folds of the training rows (cheaper than 5).", 0.45)
    else:
        if spec.folds < 10:
            more = min(10, spec.folds * 2)
            change({"folds": more}, f"Bag over {more} folds instead of {spec.folds}: each copy sees more rows.",
                   0.35, after=("train.folds+",))
        change({"folds": 1}, "Fit each model once on all training rows instead of bagging.", 0.2)
    if ctx.task_type == "classification" and ctx.proba and not ctx.targets:
        change({"calibration": "auto"}, "Calibrate the blend's probabilities for the probability metric: "
               "CalibratedClassifierCV over folds of the training rows (isotonic from 1,000 rows, sigmoid below), "
               "the fold copies averaged.", 0.55 if ctx.metric == "logloss" and ctx.n_train >= 1000 else 0.35)
        if spec.calibration != "none":
            change({"calibration": "none"}, "Use the blend's probabilities as they are, without calibration.", 0.2)
    if stoppable and spec.early_stopping and not calibrating:
        change({"patience": spec.patience * 2}, f"Wait {spec.patience * 2} rounds without improvement before "
               f"stopping (now {spec.patience}).", 0.25)
    return ops


# --- ordering against the history -------------------------------------------------------------------------------

def _verdicts(history: list[PlanRecord], base: float | None,
              maximize: bool) -> dict[str, list[str]]:
    """Per group, what happened to its plans: "helped", "hurt" or "failed"."""
    scored = [h.score for h in history if h.score is not None]
    if base is None and scored:
        # Without the solution's own score, a plan helped when it beat the worst plan tried so far.
        base = min(scored) if maximize else max(scored)
    out: dict[str, list[str]] = {}
    for record in history:
        parsed = parse_plan(record.plan)
        if parsed is None:
            continue
        group = group_of(*parsed)
        if record.score is None:
            verdict = "failed"
        elif base is not None and ((record.score > base) if maximize else (record.score < base)):
            verdict = "helped"
        else:
            verdict = "hurt"
        out.setdefault(group, []).append(verdict)
    return out


def _stalled(history: list[PlanRecord], base: float | None, maximize: bool) -> int:
    """How many plans were tried since the last one that beat the solution's score (all of them if none did)."""
    count = 0
    for record in reversed(history):
        if record.score is not None and base is not None and (
                (record.score > base) if maximize else (record.score < base)):
            break
        count += 1
    return count


def group_of(name: str, args: dict) -> str:
    """The knob and direction a plan turns; plans of one group are read together in the history."""
    if name == "set_params":
        return f"model.{args.get('member', 0)}.{args.get('move')}"
    if name == "set_preprocess":
        if "text" in args:  # a switch to TF-IDF may standardise the numeric columns with it
            return f"preprocess.text={args['text']}"
        (field_name, value), = list(args.items())[:1] or [("", "")]
        if field_name == "pair_top":
            return "preprocess.pairs+" if value else f"preprocess.pair_top={value}"
        if field_name == "group_stats":
            return "preprocess.group_stats+" if value else "preprocess.group_stats=0"
        if field_name == "as_categories":
            return "preprocess.as_categories+" if value else "preprocess.as_categories=0"
        if field_name == "impute" and value != "none":
            return "preprocess.impute"
        return f"preprocess.{field_name}={value}"
    if name == "set_target":
        return f"model.{args.get('member', 0)}.target"
    if name == "set_train":
        if "early_stopping" in args:
            return "train.early_stopping" if args["early_stopping"] else "train.no_early_stopping"
        if "folds" in args:
            return "train.folds+" if args["folds"] > 1 else "train.folds-"
        if "calibration" in args:
            return "train.calibration" if args["calibration"] != "none" else "train.no_calibration"
        return "train.patience"
    if name == "tune":
        return f"model.{args.get('member', 0)}.tune"
    if name == "set_images":
        return images.group_of(args)
    return {"swap_model": "model.swap", "add_member": "model.add", "drop_member": "model.drop"}.get(name, name)


def rank_ops(ops: list[Op], history: list[PlanRecord], base: float | None, maximize: bool, n: int) -> list[str]:
    """Up to ``n`` plan texts not yet tried, best first."""
    tried_text = {h.plan for h in history}
    tried_keys = {_key(*p) for p in (parse_plan(h.plan) for h in history) if p}
    verdicts = _verdicts(history, base, maximize)
    stalled = _stalled(history, base, maximize)
    ranked = []
    for order, op in enumerate(ops):
        if op.plan in tried_text or _key(op.name, op.args) in tried_keys:
            continue
        outcome = verdicts.get(op.group, [])
        if op.after and "helped" not in [v for g in op.after for v in verdicts.get(g, [])]:
            continue  # a stronger step only follows a step that helped
        priority = op.priority
        if op.after:
            priority += 2.0  # it helped: go further the same way first
        if op.opposite and "hurt" in verdicts.get(op.opposite, []) and "helped" not in verdicts.get(op.opposite, []):
            priority += 0.5  # the other direction hurt: try this one
        if outcome.count("hurt") and not op.after:
            priority -= 0.3 * outcome.count("hurt")
        priority -= 0.5 * outcome.count("failed")
        if op.name == "tune" and not op.after:
            priority += TUNE_STALL_BONUS * min(4, stalled)  # cheaper moves stopped helping: search properly
        ranked.append((-priority, order, op))
    ranked.sort(key=lambda t: (t[0], t[1]))
    # Plans proposed together run before any of them is scored: spread them over different knobs first (one
    # direction per knob), then fill up with the rest in order.
    chosen: list[Op] = []
    for op in (op for _, _, op in ranked):
        knobs = {c.group for c in chosen} | {c.opposite for c in chosen}
        if op.group not in knobs and len(chosen) < n:
            chosen.append(op)
    for op in (op for _, _, op in ranked):
        if op not in chosen and len(chosen) < n:
            chosen.append(op)
    order = {id(op): i for i, (_, _, op) in enumerate(ranked)}
    return [op.plan for op in sorted(chosen, key=lambda op: order[id(op)])]


# --- applying a plan --------------------------------------------------------------------------------------------

def apply_op(ctx: TaskContext, kind: str, spec, name: str, args: dict, preprocess: PreprocessSpec | None,
             model: ModelSpec | None = None):
    """The block's new spec, or None when the op does not belong to this kind of block or cannot apply (also when
    a model member could not read the features it would leave: ``text.fits``)."""
    if kind == "preprocess" and name == "set_images":
        return images.apply(spec, args)
    if kind == "preprocess" and name == "set_preprocess":
        try:
            new = PreprocessSpec.model_validate({**spec.model_dump(), **args})
        except ValueError:
            return None
        if set(new.as_categories) - set(column_roles(ctx)["numeric"]):
            return None  # only the task's numeric columns can be read as codes
        members = model.members if model else []
        lost = any(text.fits(ctx, m, spec) and not text.fits(ctx, m, new) for m in members)
        return None if lost else new
    if kind == "train" and name == "set_train":
        try:
            return TrainSpec.model_validate({**spec.model_dump(), **args})
        except ValueError:
            return None
    if kind != "model":
        return None
    members = list(spec.members)
    index = int(args.get("member", 0))
    if name in ("set_params", "set_target", "swap_model", "drop_member", "tune") and not 0 <= index < len(members):
        return None
    if name == "set_params":
        params = {**members[index].params}
        for key, value in dict(args.get("params", {})).items():
            if value is None:
                params.pop(key, None)
            else:
                params[key] = value
        members[index] = members[index].model_copy(update={"params": params})
    elif name == "set_target":
        if ctx.task_type != "regression":
            return None
        members[index] = members[index].model_copy(update={"target": args.get("target", "none")})
    elif name == "swap_model":
        family = families.family_of(str(args.get("estimator")))
        if family is None or family.path(ctx.task_type) is None:
            return None
        members[index] = family_member(ctx, family, preprocess).model_copy(update={"weight": members[index].weight})
    elif name == "add_member":
        family = families.family_of(str(args.get("estimator")))
        if family is None or family.path(ctx.task_type) is None or len(members) >= MAX_MEMBERS:
            return None
        members.append(family_member(ctx, family, preprocess))
    elif name == "drop_member":
        if len(members) < 2:
            return None
        members.pop(index)
    elif name == "tune":
        if not families.search_space(members[index].estimator):
            return None
        try:
            tune = TuneSpec.model_validate({k: v for k, v in args.items() if k != "member"})
        except ValueError:
            return None
        members[index] = members[index].model_copy(update={"tune": tune})
    else:
        return None
    if name in ("swap_model", "add_member") and not text.fits(ctx, members[-1 if name == "add_member" else index],
                                                               preprocess):
        return None  # a model that cannot read the block's features (dense-only beside TF-IDF, ...)
    return ModelSpec(members=members)



# --- plans for a block of a script, and their code ---------------------------------------------------------------

def candidate_plans(ctx: TaskContext, code: str, block: BlockInfo, history: list[PlanRecord],
                    base_score: float | None, n: int) -> list[str]:
    """Up to ``n`` untried plans for ``block``, best first (empty: a block without a spec, e.g. written by an LLM,
    or a kind without ops)."""
    spec = block_spec(block.source, block.kind)
    if spec is None or n <= 0:
        return []
    specs = specs_of(code)
    model = specs.get("model") if isinstance(specs.get("model"), ModelSpec) else None
    preprocess = specs.get("preprocess") if isinstance(specs.get("preprocess"), PreprocessSpec) else None
    makers = {"preprocess": lambda: preprocess_ops(ctx, spec, model),
              "model": lambda: model_ops(ctx, spec, preprocess),
              "train": lambda: train_ops(ctx, spec, model)}
    if block.kind not in makers:
        return []
    return rank_ops(makers[block.kind](), history, base_score, ctx.maximize, n)


def specs_for(ctx: TaskContext, code: str, block: BlockInfo, plan: str) -> tuple:
    """(the block's spec, the spec the plan's op makes of it); either is None when there is none (a block without
    a spec, a plan without an op, an op or args that do not fit the block)."""
    parsed = parse_plan(plan)
    spec = block_spec(block.source, block.kind)
    if parsed is None or spec is None:
        return spec, None
    specs = specs_of(code)
    preprocess = specs.get("preprocess") if isinstance(specs.get("preprocess"), PreprocessSpec) else None
    model = specs.get("model") if isinstance(specs.get("model"), ModelSpec) else None
    return spec, apply_op(ctx, block.kind, spec, *parsed, preprocess, model)


def implement(ctx: TaskContext, code: str, block: BlockInfo, plan: str) -> str | None:
    """The block's new source for a plan with an op (None: no op, an op that does not fit, or no change)."""
    spec, new = specs_for(ctx, code, block, plan)
    if new is None or new == spec:
        return None
    return rendered(ctx, block, new)
