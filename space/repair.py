"""Rule-based rewrites of scripts that carry block specs: simpler blocks for ablation, repairs for the debugger,
the leakage checker and the data-usage checker. Scripts without specs (written by an LLM) get None."""

from __future__ import annotations

import re

from core.policy import TaskContext
from space import families, images, text
from space.draft import family_member
from space.specs import LoadSpec, ModelSpec, PreprocessSpec, TrainSpec
from space.render import marked_blocks, render_block, replace_block, specs_of

FRAME = re.compile(r'File "([^"]+)", line (\d+)')
MISSING_MODULE = re.compile(r"No module named '([\w.]+)'|cannot import name '\w+' from '([\w.]+)'")
# A substitute from scikit-learn for families from other libraries, by what they are.
BOOSTING_LIBRARIES = ("lightgbm", "xgboost", "catboost")


# --- ablation ---------------------------------------------------------------------------------------------------

def simpler_spec(ctx: TaskContext, kind: str, spec, preprocess: PreprocessSpec | None = None):
    """The simplest version of a block that still runs, or None when it is that already (or has no spec)."""
    if spec is None:
        return None
    if kind == "preprocess":
        # TF-IDF stays (word n-grams only, numeric columns still standardised for the linear models beside it):
        # its models may read nothing else (naive Bayes), and on a text task the text is the data; without it,
        # the text goes unless it is all there is
        tfidf = text.sparse_features(ctx, spec)
        simple = PreprocessSpec(impute="median", encoding="ordinal", scaling="standard" if tfidf else "none",
                                missing_indicators=False, log1p_skewed=False, pair_top=0, count_features=False,
                                datetime_parts=False, text="tfidf" if tfidf else text.plain_mode(ctx),
                                tfidf_chars=not tfidf, images=images.simpler(ctx, spec.images))
    elif kind == "model":
        members = [m.model_copy(update={"params": {k: v for k, v in families.ESSENTIAL.items()
                                                   if k in m.params}, "tune": None}) for m in spec.members]
        simple = ModelSpec(members=members)
        if simple == spec and len(spec.members) > 1:
            simple = ModelSpec(members=members[:1])
    elif kind == "train":
        simple = TrainSpec()
    elif kind == "load_data":
        simple = LoadSpec(coerce_numeric=spec.coerce_numeric)
    else:
        return None
    return None if simple == spec else simple


# --- debugging --------------------------------------------------------------------------------------------------

def failing_kind(code: str, error: str) -> str | None:
    """The kind of the marked block holding the script's deepest frame in the traceback."""
    lines = [int(n) for path, n in FRAME.findall(error or "")
             if "site-packages" not in path and "/lib/python" not in path and not path.startswith("<")]
    if not lines:
        return None
    line = lines[-1]
    for kind, _, start, end in marked_blocks(code):
        if start <= line <= end:
            return kind
    return None


def substitute(ctx: TaskContext, path: str) -> families.Family | None:
    """A scikit-learn family to stand in for a model whose library is missing."""
    root = path.split(".")[0]
    name = "hist_gradient_boosting" if root in BOOSTING_LIBRARIES or "boost" in path.lower() else "random_forest"
    family = next(f for f in families.FAMILIES if f.name == name)
    return family if family.path(ctx.task_type) else None


def debug_script(ctx: TaskContext, code: str, error: str) -> str | None:
    specs = specs_of(code)
    if not specs:
        return None
    text = error or ""
    new = dict(specs)
    missing = MISSING_MODULE.search(text)
    if missing and isinstance(specs.get("model"), ModelSpec):
        module = (missing.group(1) or missing.group(2)).split(".")[0]
        members = []
        for member in specs["model"].members:
            if images.library_of(member.estimator) == module:  # the CNN a script defines needs torch
                family = substitute(ctx, member.estimator)
                if family is None:
                    return None
                member = family_member(ctx, family, specs.get("preprocess"))
            members.append(member)
        new["model"] = ModelSpec(members=members)
    elif re.search(r"timed? ?out|timeout|MemoryError|out_of_memory|Killed", text, re.IGNORECASE):
        _cheaper(ctx, new)
    elif re.search(r"contains NaN|contains infinity|too large for dtype|Input contains|missing values", text):
        pre = specs.get("preprocess")
        if isinstance(pre, PreprocessSpec):
            new["preprocess"] = pre.model_copy(update={
                "impute": "median" if pre.impute == "none" else pre.impute, "pair_top": 0, "log1p_skewed": False})
        if isinstance(specs.get("model"), ModelSpec):
            new["model"] = ModelSpec(members=[m.model_copy(update={"impute": not families.handles_missing(m.estimator)})
                                              for m in specs["model"].members])
    elif re.search(r"could not convert string to float|dtype|Cannot cast|invalid literal", text):
        if isinstance(specs.get("load_data"), LoadSpec):
            new["load_data"] = specs["load_data"].model_copy(update={"coerce_numeric": True})
        pre = specs.get("preprocess")
        if isinstance(pre, PreprocessSpec):
            new["preprocess"] = pre.model_copy(update={
                "impute": "median" if pre.impute == "none" else pre.impute, "encoding": "ordinal",
                "text": "tfidf" if text.sparse_features(ctx, pre) else text.plain_mode(ctx)})
    changed = {k: v for k, v in new.items() if v != specs.get(k)}
    if not changed:
        # No rule for this error: simplify the block the traceback points into.
        kind = failing_kind(code, text)
        simple = simpler_spec(ctx, kind, specs.get(kind)) if kind else None
        if simple is None:
            return None
        changed = {kind: simple}
    for kind, spec in changed.items():
        code = replace_block(code, kind, render_block(ctx, kind, spec)) or code
    return code


def _cheaper(ctx: TaskContext, specs: dict) -> None:
    """Fewer fits and smaller models: plain training, half the rounds, trees and hidden units."""
    train = specs.get("train")
    if isinstance(train, TrainSpec):
        specs["train"] = train.model_copy(update={"folds": 1})
    model = specs.get("model")
    if isinstance(model, ModelSpec):
        members = []
        for m in model.members:
            params = dict(m.params)
            for key in ("n_estimators", "max_iter", "iterations"):
                if isinstance(params.get(key), int) and params[key] > 50:
                    params[key] = max(50, params[key] // 2)
            if isinstance(params.get("seconds"), (int, float)):  # the CNN's time slice
                params["seconds"] = max(5.0, params["seconds"] / 2)
            if isinstance(params.get("hidden_layer_sizes"), list):
                params["hidden_layer_sizes"] = [max(8, n // 2) for n in params["hidden_layer_sizes"]]
            members.append(m.model_copy(update={"params": params, "tune": None}))  # no study: it takes its time
        specs["model"] = ModelSpec(members=members)
    pre = specs.get("preprocess")
    if isinstance(pre, PreprocessSpec):
        specs["preprocess"] = pre.model_copy(update={
            "pair_top": 0, "text": "stats" if pre.text == "hash" else pre.text,
            "encoding": "ordinal" if pre.encoding == "onehot" else pre.encoding,
            "tfidf_chars": False,  # character n-grams: most of TF-IDF's time
            "images": pre.images and pre.images.model_copy(update={"side": max(8, pre.images.side // 2)})})


# --- checkers ---------------------------------------------------------------------------------------------------

def rerender(ctx: TaskContext, code: str, kinds: tuple[str, ...]) -> str | None:
    """The blocks of these kinds rendered afresh from their own specs (the renderer fits on training rows only)."""
    specs = specs_of(code)
    out = code
    for kind in kinds:
        if kind in specs:
            out = replace_block(out, kind, render_block(ctx, kind, specs[kind])) or out
    return out if out != code else None


def with_joins(ctx: TaskContext, code: str, files: list[str]) -> str | None:
    load = specs_of(code).get("load_data")
    if not isinstance(load, LoadSpec):
        return None
    joins = load.joins + [f for f in files if f not in load.joins]
    if joins == load.joins:
        return None
    return replace_block(code, "load_data", render_block(ctx, "load_data", load.model_copy(update={"joins": joins})))
