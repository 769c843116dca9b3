"""Block specs → Python source, and back: every block opens with ``# [block: kind] {json spec}``.

Blocks talk only through fixed names — ``SEED, ID, TARGET, PRED_COLUMNS, CLASSIFICATION, CLASSES, NUMERIC,
CATEGORICAL, TEXT, DATETIME, train, valid, test, y_train, y_valid`` (load_data), ``X_train, X_valid, X_test``
(preprocess), ``make_models`` (model), ``fitted`` (train) — so any one block can be re-rendered from its changed spec
while the others stay as they are. Everything that learns from data is fitted on the training rows only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from pydantic import ValidationError

from core.policy import BlockInfo, TaskContext
from space import families, images, text
from space.specs import (
    KINDS,
    SPEC_TYPES,
    ImportsSpec,
    LoadSpec,
    MemberSpec,
    ModelSpec,
    PredictSpec,
    PreprocessSpec,
    ScriptSpec,
    TrainSpec,
)

MARKER = re.compile(r"^[ \t]*#[ \t]*\[block:[ \t]*(\w+)[ \t]*\][ \t]*(\{.*\})?[ \t]*$")
LABEL_METRICS = ("accuracy", "balanced_accuracy", "f1")
REGRESSION_METRICS = ("rmse", "rmsle", "mae", "r2")
PROBA_METRICS = ("roc_auc", "logloss")


# --- reading specs back -----------------------------------------------------------------------------------------

def parse_marker(line: str) -> tuple[str, object] | None:
    """(kind, spec) from a marker line; spec is None when the line has no JSON or it does not validate."""
    match = MARKER.match(line)
    if not match:
        return None
    kind, raw = match.group(1), match.group(2)
    spec_type = SPEC_TYPES.get(kind)
    if raw is None or spec_type is None:
        return kind, None
    try:
        return kind, spec_type.model_validate(json.loads(raw))
    except (ValueError, ValidationError):
        return kind, None


def block_spec(source: str, kind: str | None = None):
    """The spec on the block's marker line (None: the block has none). A block holds at most one marker, above its
    first statement or after a module docstring that the splitter attaches to the first block."""
    for line in source.splitlines():
        found = parse_marker(line)
        if found and (kind is None or found[0] == kind):
            return found[1]
    return None


def marked_blocks(code: str) -> list[tuple[str, object, int, int]]:
    """(kind, spec, first line, last line) of every marked block, 1-based; a block runs to the next marker."""
    lines = code.splitlines()
    starts = [(i, parse_marker(line)) for i, line in enumerate(lines)]
    starts = [(i, found) for i, found in starts if found]
    out = []
    for n, (i, (kind, spec)) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        while end > i + 1 and not lines[end - 1].strip():
            end -= 1
        out.append((kind, spec, i + 1, end))
    return out


def specs_of(code: str) -> dict[str, object]:
    """Each marked block's spec by kind (blocks without a readable spec left out)."""
    return {kind: spec for kind, spec, _, _ in marked_blocks(code) if spec is not None}


def script_spec(code: str) -> ScriptSpec | None:
    """The whole script's spec when every block of it carries one (a heuristic script, perhaps refined)."""
    specs = {kind: spec for kind, spec, _, _ in marked_blocks(code) if spec is not None}
    if not set(KINDS) <= set(specs) or len([k for k, *_ in marked_blocks(code)]) != len(KINDS):
        return None
    title = re.match(r'^"""(.*?):', code)
    return ScriptSpec(title=title.group(1) if title else "solution", **specs)


def replace_block(code: str, kind: str, new_source: str) -> str | None:
    """``code`` with its marked block of ``kind`` replaced (None when there is no such block)."""
    lines = code.splitlines(keepends=True)
    for found_kind, _, start, end in marked_blocks(code):
        if found_kind == kind:
            tail = "\n" if end < len(lines) or code.endswith("\n") else ""
            return "".join(lines[: start - 1]) + new_source.rstrip("\n") + tail + "".join(lines[end:])
    return None


# --- rendering --------------------------------------------------------------------------------------------------

def marker(kind: str, spec) -> str:
    data = spec.model_dump(mode="json", exclude={"title"}) if spec is not None else {}
    return f"# [block: {kind}] {json.dumps(data, separators=(', ', ': '))}"


def render_script(ctx: TaskContext, specs: ScriptSpec) -> str:
    """A complete script following the script contract, one marked block per kind."""
    header = (f'"""{specs.title}: a solution for task {ctx.name!r} ({ctx.task_type}, metric {ctx.metric}), written by '
              f"mlestar's heuristic policy.\n\nEach block starts with `# [block: kind] {{spec}}`: the JSON is the recipe "
              f"the block was rendered from.\n\"\"\"\n")
    blocks = [render_block(ctx, kind, specs.block(kind)) for kind in KINDS]
    return header + "\n" + "\n\n\n".join(blocks) + "\n"


def render_block(ctx: TaskContext, kind: str, spec) -> str:
    renderer = {"imports": _imports, "load_data": _load_data, "preprocess": _preprocess, "model": _model,
                "train": _train, "predict": _predict}[kind]
    return marker(kind, spec) + "\n" + renderer(ctx, spec).strip("\n")


def rendered(ctx: TaskContext, block: BlockInfo, spec) -> str:
    """``block`` re-rendered from ``spec``, keeping any lines it had above its marker (a module docstring)."""
    lines = block.source.splitlines()
    at = next((i for i, line in enumerate(lines) if MARKER.match(line)), 0)
    return "\n".join([*lines[:at], render_block(ctx, block.kind, spec)])


def _imports(ctx: TaskContext, spec: ImportsSpec) -> str:
    return '''
import re
import warnings

import numpy as np
import pandas as pd
import sklearn
from sklearn import metrics
from sklearn.base import clone
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, QuantileTransformer, RobustScaler, StandardScaler

# Convergence and feature-name notices would bury the score line; errors still surface.
for category in (ConvergenceWarning, UserWarning, FutureWarning, DeprecationWarning, RuntimeWarning):
    warnings.filterwarnings("ignore", category=category)


def take_rows(X, positions):
    """Rows by position of the features: a data frame, or a sparse matrix (TF-IDF of free text)."""
    return X.iloc[positions] if hasattr(X, "iloc") else X[positions]
'''


def column_roles(ctx: TaskContext, codes: Sequence[str] = ()) -> dict[str, list[str]]:
    """Feature columns by how they are prepared: booleans count as categories, free text and dates apart; the
    numeric columns named in ``codes`` are read as categories too (a preprocess block's ``as_categories``)."""
    roles: dict[str, list[str]] = {"numeric": [], "categorical": [], "text": [], "datetime": []}
    for column in ctx.columns:
        role = {"numeric": "numeric", "text": "text", "datetime": "datetime"}.get(column.dtype, "categorical")
        roles["categorical" if role == "numeric" and column.name in codes else role].append(column.name)
    return roles


def code_columns(ctx: TaskContext, spec: PreprocessSpec) -> list[str]:
    """The numeric columns ``spec`` reads as categories, in the task's column order."""
    return [c for c in column_roles(ctx)["numeric"] if c in spec.as_categories]


def _py(value) -> str:
    return repr(value)


def _load_data(ctx: TaskContext, spec: LoadSpec) -> str:
    roles = column_roles(ctx)
    classification = ctx.task_type == "classification"
    targets = list(ctx.targets)
    out = [
        f"SEED = {ctx.seed}",
        *([f"ID, TARGETS = {ctx.id_column!r}, {targets!r}  # several columns to predict, one model each"] if targets
          else [f"ID, TARGET = {ctx.id_column!r}, {ctx.target!r}"]),
        f"PRED_COLUMNS = {_py(list(ctx.prediction_columns))}  # the sample submission's columns after the id",
        f"CLASSIFICATION = {classification}",
        f"NUMERIC = {_py(roles['numeric'])}",
        f"CATEGORICAL = {_py(roles['categorical'])}",
        f"TEXT = {_py(roles['text'])}",
        f"DATETIME = {_py(roles['datetime'])}",
        "",
        'train = pd.read_csv("./input/train.csv")',
        'valid = pd.read_csv("./input/valid.csv")',
        'test = pd.read_csv("./input/test.csv")',
        ("train = train[train[TARGETS].notna().all(axis=1)].reset_index(drop=True)" if targets else
         "train = train[train[TARGET].notna()].reset_index(drop=True)"),
    ]
    if spec.joins:
        out += ["", _JOIN_FUNCTION.strip("\n"), ""]
        for name in spec.joins:
            out.append(f'train, valid, test = join_file((train, valid, test), "./input/{name}")')
    out += [
        "",
        "# A feature must be in all three frames; the id and the target never are features.",
        "present = (set(train.columns) & set(valid.columns) & set(test.columns)) - {ID, "
        + ("*TARGETS}" if targets else "TARGET}"),
        "NUMERIC, CATEGORICAL, TEXT, DATETIME = ([c for c in group if c in present]",
        "                                        for group in (NUMERIC, CATEGORICAL, TEXT, DATETIME))",
    ]
    if spec.coerce_numeric:
        out += [
            "for frame in (train, valid, test):",
            "    for column in NUMERIC:  # a stray string in a numeric column becomes a gap",
            '        frame[column] = pd.to_numeric(frame[column], errors="coerce")',
        ]
    if classification and targets:
        out += [
            "",
            "# The models see class codes 0..k-1 (one code list for every target); predict maps them back to labels.",
            "CLASSES = np.sort(pd.unique(train[TARGETS].to_numpy().ravel()))",
            "y_train = pd.DataFrame({t: np.searchsorted(CLASSES, train[t]) for t in TARGETS})",
            "y_valid = valid[TARGETS]",
        ]
    elif targets:
        out += ["", "y_train = train[TARGETS].astype(float)", "y_valid = valid[TARGETS].astype(float)"]
    elif classification:
        out += [
            "",
            "# The models see class codes 0..k-1; the predict block maps them back to the labels in CLASSES.",
            "CLASSES = np.sort(train[TARGET].unique())",
            "y_train = pd.Series(np.searchsorted(CLASSES, train[TARGET]), name=TARGET)",
            "y_valid = valid[TARGET]",
        ]
    else:
        out += ["", "y_train = train[TARGET].astype(float)", "y_valid = valid[TARGET].astype(float)"]
    return "\n".join(out)


_JOIN_FUNCTION = '''
def join_file(frames, path):
    """Left-join a provided file on a column it shares with train.csv (the id, else a *id column, else the first).

    Keys that repeat in the file are aggregated first (numeric means plus a row count), so no row is duplicated.
    The file's new columns become features; a file that shares no column is left out.
    """
    global NUMERIC, CATEGORICAL
    extra = pd.read_csv(path)
    shared = [c for c in extra.columns if c in frames[0].columns and c != TARGET]
    if not shared:
        print(f"{path}: shares no column with train.csv; not joined")
        return frames
    ids = [c for c in shared if c == ID] + [c for c in shared if c.lower().endswith("id") and c != ID]
    key = (ids or shared)[0]
    stem = re.sub(r"\\W+", "_", path.rsplit("/", 1)[-1].rsplit(".", 1)[0])
    if extra[key].duplicated().any():
        numeric = [c for c in extra.select_dtypes("number").columns if c not in shared]
        grouped = extra.groupby(extra[key].astype(str))
        table = grouped[numeric].mean().add_prefix(f"{stem}_mean_")
        table[f"{stem}_rows"] = grouped.size()
    else:
        table = extra.set_index(extra[key].astype(str))[[c for c in extra.columns if c not in shared]]
    NUMERIC = NUMERIC + [c for c in table.columns if pd.api.types.is_numeric_dtype(table[c])]
    CATEGORICAL = CATEGORICAL + [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    print(f"{path}: joined on {key!r}, {table.shape[1]} columns added")
    return tuple(pd.concat([frame.reset_index(drop=True),
                            table.reindex(frame[key].astype(str).to_numpy()).reset_index(drop=True)], axis=1)
                 for frame in frames)
'''


def _preprocess(ctx: TaskContext, spec: PreprocessSpec) -> str:
    roles = column_roles(ctx, spec.as_categories)
    codes = code_columns(ctx, spec)
    hashing = roles["text"] and spec.text == "hash"
    tfidf = text.sparse_features(ctx, spec)
    pairs = spec.pair_top >= 2
    targets = roles["categorical"] and spec.encoding == "target"
    groups = spec.group_stats > 0 and roles["categorical"] and roles["numeric"]
    out = [  # imports that only some recipes need live here, so the other scripts start faster
        *(["from sklearn.feature_extraction.text import HashingVectorizer"] if hashing else []),
        *(text.TFIDF_IMPORTS if tfidf else []),
        *(["from sklearn.feature_selection import f_classif, f_regression"] if pairs else []),
        *(["from sklearn.preprocessing import TargetEncoder"] if targets else []),
        *(["from sklearn.preprocessing import SplineTransformer"] if spec.splines else []),
        *([""] if hashing or tfidf or pairs or targets or spec.splines else []),
        "# Everything here is fitted on the training rows only, then applied to the validation and test rows.",
        *(["# Integer codes read as categories: a number that names an interviewer or a hospital says which, not "
           "how much.",
           f"CODES = {_py(codes)}",
           "numeric = [c for c in NUMERIC if c not in CODES]",
           "categorical = list(CATEGORICAL) + [c for c in CODES if c in NUMERIC]"] if codes
          else ["numeric, categorical = list(NUMERIC), list(CATEGORICAL)"]),
        "X_train, X_valid, X_test = (frame[NUMERIC + CATEGORICAL + TEXT + DATETIME].copy()",
        "                            for frame in (train, valid, test))",
    ]
    if spec.images is not None and ctx.images is not None:  # pixel columns from the image files (space.images)
        out = [*images.IMPORTS, *([""] if out[0].startswith("#") else []), *out, "",
               images.image_step(ctx, spec.images)]
    if roles["datetime"]:
        if spec.datetime_parts:
            out += ["", _DATETIME.strip("\n")]
        else:
            out += ["", "X_train, X_valid, X_test = (frame.drop(columns=DATETIME) for frame in (X_train, X_valid, X_test))"]
    if roles["text"]:
        if spec.text == "drop":
            out += ["", "X_train, X_valid, X_test = (frame.drop(columns=TEXT) for frame in (X_train, X_valid, X_test))"]
        elif tfidf:
            out += ["", text.tfidf_code(spec)]
        else:
            hashed = 32 if spec.text == "hash" else 0
            about = f", plus {hashed} hashed token counts (hashing is stateless: nothing is fitted)" if hashed else ""
            out += ["", _TEXT.strip("\n").replace("__ABOUT__", about).replace("__N__", str(hashed))]
    if roles["categorical"]:
        out += ["", _CATEGORIES.strip("\n")]
    if spec.log1p_skewed:
        out += ["", _LOG1P.strip("\n")]
    if pairs:
        out += ["", _pairs_code(spec)]
    if groups:
        out += ["", _GROUPS.strip("\n").replace("__K__", str(spec.group_stats))]
    if roles["categorical"] and (spec.count_features or spec.encoding == "count"):
        replace = spec.encoding == "count"
        out += ["", (_COUNT_REPLACE if replace else _COUNT_ADD).strip("\n")]
    if spec.missing_indicators:
        out += ["", _INDICATORS.strip("\n")]
    out += ["", *_column_transformer(ctx, spec)]
    # Two blank lines around function definitions, one elsewhere.
    source = "\n".join(out)
    return re.sub(r"(?<!\n)\n\n((?:#[^\n]*\n)*def )", r"\n\n\n\1", source)


_DATETIME = '''
# Dates: calendar parts as numbers (parsing learns nothing from the data); the raw strings are dropped.
def date_parts(frame):
    for column in DATETIME:
        stamp = pd.to_datetime(frame.pop(column), errors="coerce")
        for part in ("year", "month", "day", "dayofweek", "hour"):
            frame[f"{column}_{part}"] = getattr(stamp.dt, part).astype(float)
    return frame


X_train, X_valid, X_test = (date_parts(frame) for frame in (X_train, X_valid, X_test))
numeric += [f"{c}_{p}" for c in DATETIME for p in ("year", "month", "day", "dayofweek", "hour")]
'''

_TEXT = '''
# Free text: length and word count__ABOUT__.
HASHED_TOKENS = __N__


def text_features(frame):
    parts = [frame.drop(columns=TEXT)]
    for column in TEXT:
        words = frame[column].fillna("").astype(str)
        parts.append(pd.DataFrame({f"{column}_chars": words.str.len(),
                                   f"{column}_words": words.str.split().str.len()}, index=frame.index))
        if HASHED_TOKENS:
            hasher = HashingVectorizer(n_features=HASHED_TOKENS, alternate_sign=False, norm="l2")
            parts.append(pd.DataFrame(hasher.transform(words).toarray(), index=frame.index,
                                      columns=[f"{column}_h{i}" for i in range(HASHED_TOKENS)]))
    return pd.concat(parts, axis=1)


X_train, X_valid, X_test = (text_features(frame) for frame in (X_train, X_valid, X_test))
numeric += [c for c in X_train.columns if c not in numeric + categorical]
'''

_CATEGORIES = '''
def as_label(value):
    """A category as text, the same in every frame: 1.0 and 1 are one label, a gap is the label 'missing'."""
    if pd.isna(value):
        return "missing"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


for frame in (X_train, X_valid, X_test):
    for column in categorical:
        frame[column] = frame[column].map(as_label)
'''

_LOG1P = '''
# log1p of the numeric columns that are non-negative and right-skewed in the training rows.
skewed = [c for c in NUMERIC if X_train[c].min() >= 0 and X_train[c].skew() > 1.0]
for frame in (X_train, X_valid, X_test):
    for column in skewed:
        frame[column] = np.log1p(frame[column].clip(lower=0))
'''

_PAIRS = '''
# Products and ratios of every pair among the __TOP__ numeric columns most related to the target (F-test on the
# training rows, gaps filled with the training medians for the test only).
filled = X_train[NUMERIC].fillna(X_train[NUMERIC].median()).fillna(0.0)
strength = np.nan_to_num((f_classif if CLASSIFICATION else f_regression)(filled, y_train)[0]) if NUMERIC else []
top = [NUMERIC[i] for i in np.argsort(-np.asarray(strength), kind="stable")[:__TOP__]]
pairs = [(a, b) for i, a in enumerate(top) for b in top[i + 1:]]


def pair_features(frame):
    new = {}
    for a, b in pairs:
        new[f"{a}_x_{b}"] = frame[a] * frame[b]
        new[f"{a}_per_{b}"] = frame[a] / frame[b].where(frame[b] != 0)
    return pd.concat([frame, pd.DataFrame(new, index=frame.index)], axis=1)


X_train, X_valid, X_test = (pair_features(frame) for frame in (X_train, X_valid, X_test))
numeric += [f"{a}_{op}_{b}" for a, b in pairs for op in ("x", "per")]
'''

def _pairs_code(spec: PreprocessSpec) -> str:
    code = _PAIRS.strip("\n").replace("__TOP__", str(spec.pair_top))
    if not spec.pair_differences:
        return code
    return (code.replace("# Products and ratios of every pair", "# Products, ratios and differences of every pair")
            .replace('        new[f"{a}_per_{b}"] = frame[a] / frame[b].where(frame[b] != 0)\n',
                     '        new[f"{a}_per_{b}"] = frame[a] / frame[b].where(frame[b] != 0)\n'
                     '        new[f"{a}_minus_{b}"] = frame[a] - frame[b]\n')
            .replace('for op in ("x", "per")]', 'for op in ("x", "per", "minus")]'))


_GROUPS = '''
# Group statistics: per category of the __K__ categorical column(s) most related to the target, the mean and standard
# deviation of the 3 numeric columns most related to it, and each row's distance from its group's mean; all fitted
# on the training rows (unseen categories get the training rows' overall values).
target_table = pd.get_dummies(y_train).astype(float) if CLASSIFICATION else y_train.to_frame().astype(float)
target_table.index = X_train.index


def explained_share(keys):
    """The share of the target's variance its means per category explain (correlation ratio, training rows)."""
    centred = target_table - target_table.mean()
    means = centred.groupby(keys.to_numpy()).transform("mean")
    return float((means ** 2).to_numpy().sum() / max((centred ** 2).to_numpy().sum(), 1e-12))


def correlation(column):
    values = X_train[column]
    return max((np.nan_to_num(abs(values.corr(target_table[k]))) for k in target_table.columns), default=0.0)


grouping = sorted((c for c in categorical if 1 < X_train[c].nunique() <= max(2, len(X_train) // 10)),
                  key=lambda c: -explained_share(X_train[c]))[:__K__]
summarised = sorted((c for c in NUMERIC if X_train[c].notna().sum() > 2), key=lambda c: -correlation(c))[:3]
group_tables = {(g, c): X_train.groupby(g)[c].agg(["mean", "std"]) for g in grouping for c in summarised}
overall = {c: (X_train[c].mean(), X_train[c].std()) for c in summarised}


def group_features(frame):
    new = {}
    for (g, c), table in group_tables.items():
        mean = frame[g].map(table["mean"]).astype(float).fillna(overall[c][0])
        new[f"{c}_mean_by_{g}"] = mean
        new[f"{c}_std_by_{g}"] = frame[g].map(table["std"]).astype(float).fillna(overall[c][1])
        new[f"{c}_minus_mean_by_{g}"] = frame[c] - mean
    return pd.concat([frame, pd.DataFrame(new, index=frame.index)], axis=1)


X_train, X_valid, X_test = (group_features(frame) for frame in (X_train, X_valid, X_test))
numeric += [f"{c}_{s}_by_{g}" for g, c in group_tables for s in ("mean", "std", "minus_mean")]
'''

_COUNT_ADD = '''
# How often each category occurs in the training rows, as an extra numeric column (unseen: 0).
counts = {column: X_train[column].value_counts() for column in categorical}
for frame in (X_train, X_valid, X_test):
    for column in categorical:
        frame[f"{column}_count"] = frame[column].map(counts[column]).fillna(0).astype(float)
numeric += [f"{column}_count" for column in categorical]
'''

_COUNT_REPLACE = '''
# Count encoding: each category replaced by how often it occurs in the training rows (unseen: 0).
counts = {column: X_train[column].value_counts() for column in categorical}
for frame in (X_train, X_valid, X_test):
    for column in categorical:
        frame[column] = frame[column].map(counts[column]).fillna(0).astype(float)
numeric, categorical = numeric + categorical, []
'''

_INDICATORS = '''
# A 0/1 indicator for each numeric column with gaps in the training rows.
gappy = [c for c in numeric if X_train[c].isna().any()]
for frame in (X_train, X_valid, X_test):
    for column in gappy:
        frame[f"{column}_missing"] = frame[column].isna().astype(float)
numeric += [f"{column}_missing" for column in gappy]
'''

_ENCODERS = {
    "ordinal": 'OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)',
    "onehot": 'OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=20, sparse_output=False)',
    # Beside TF-IDF the matrix is sparse anyway, so every category keeps its own column: the cap cost
    # docstring-sections' linear draft 0.014 AUC (3 search folds, 0.6936 against 0.7074; `module` has 55 values).
    "onehot_sparse": 'OneHotEncoder(handle_unknown="ignore")',
    "target": "target_encoder()",
    "count": "None",
}
_SCALERS = {
    "standard": "StandardScaler()",
    "robust": "RobustScaler()",
    "quantile": 'QuantileTransformer(n_quantiles=min(1000, len(X_train)), output_distribution="normal", '
                "random_state=SEED)",
}
_TARGET_ENCODER = '''
def target_encoder():
    """Mean target per category, cross-fitted on the training rows (each row encoded by the other folds)."""
    kind = "continuous" if not CLASSIFICATION else ("binary" if len(CLASSES) == 2 else "multiclass")
    folds = (StratifiedKFold if CLASSIFICATION else KFold)(n_splits=5, shuffle=True, random_state=SEED)
    if tuple(int(p) for p in sklearn.__version__.split(".")[:2]) >= (1, 9):  # 1.9 moved the seed into `cv`
        return TargetEncoder(target_type=kind, cv=folds)
    return TargetEncoder(target_type=kind, random_state=SEED)

'''


def _column_transformer(ctx: TaskContext, spec: PreprocessSpec) -> list[str]:
    steps = []
    if spec.impute != "none":
        fill = ', fill_value=0.0' if spec.impute == "constant" else ""
        steps.append(f'SimpleImputer(strategy="{spec.impute}"{fill})')
    if spec.scaling != "none":
        steps.append(_SCALERS[spec.scaling])
    numeric = f"make_pipeline({', '.join(steps)})" if steps else '"passthrough"'
    out = []
    if spec.splines:
        fill = 'SimpleImputer(strategy="median")' if spec.impute == "none" else steps[0]
        out += ["# Beside the numeric columns, cubic B-spline bases (3 knots at training quantiles, linear beyond them) of",
                "# those with more than 10 distinct training values: smooth curved effects for linear models.",
                "smooth = [c for c in numeric if X_train[c].nunique() > 10]", ""]
    has_categorical = bool(column_roles(ctx, spec.as_categories)["categorical"])
    sparse = text.sparse_features(ctx, spec)
    encoding = encoder_key(ctx, spec, spec.encoding)
    if has_categorical and spec.encoding == "target":
        out += _TARGET_ENCODER.strip("\n").splitlines() + [""]
    out += [
        f"# Numeric: {_describe_numeric(spec)}."
        + (f" Categorical: {describe_encoding(encoding)}." if has_categorical else ""),
        "parts = []",
        "if numeric:",
        f'    parts.append(("numeric", {numeric}, numeric))',
    ]
    if spec.splines:
        out += ["if smooth:",
                f'    parts.append(("splines", make_pipeline({fill}, SplineTransformer(n_knots=3, degree=3, '
                'knots="quantile", extrapolation="linear", include_bias=False)), smooth))']
    if has_categorical and spec.encoding != "count":
        out += ["if categorical:", f'    parts.append(("categorical", {_ENCODERS[encoding]}, categorical))']
    if sparse:
        return out + text.TFIDF_PARTS + text.SPARSE_OUTPUT
    out += [
        'preprocessor = ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)',
        'preprocessor.set_output(transform="pandas")',
        "X_train = preprocessor.fit_transform(X_train, y_train)",
        "X_valid = preprocessor.transform(X_valid)",
        "X_test = preprocessor.transform(X_test)",
        "# Plain, unique column names: some libraries reject punctuation in feature names.",
        'names = [re.sub(r"[^0-9A-Za-z_]+", "_", str(c)) for c in X_train.columns]',
        'names = [f"{n}_{i}" if names.count(n) > 1 else n for i, n in enumerate(names)]',
        "X_train.columns, X_valid.columns, X_test.columns = names, names, names",
    ]
    return out


def _describe_numeric(spec: PreprocessSpec) -> str:
    parts = []
    parts.append("gaps kept (the models handle them)" if spec.impute == "none" else
                 f"gaps filled with the {spec.impute.replace('_', ' ')}" if spec.impute != "constant" else
                 "gaps filled with 0")
    if spec.scaling != "none":
        parts.append({"standard": "standardised", "robust": "scaled by median and IQR",
                      "quantile": "mapped to normal quantiles"}[spec.scaling])
    if spec.splines:
        parts.append("spline bases of the spread-out columns added")
    return ", ".join(parts)


def encoder_key(ctx: TaskContext, spec: PreprocessSpec, encoding: str) -> str:
    """The ``_ENCODERS`` entry ``encoding`` renders as beside ``spec``'s features: one-hot is uncapped beside TF-IDF."""
    return "onehot_sparse" if encoding == "onehot" and text.sparse_features(ctx, spec) else encoding


def describe_encoding(encoding: str) -> str:
    return {"ordinal": "ordinal codes (unseen: -1)", "onehot": "one-hot codes (at most 20 per column)",
            "onehot_sparse": "one-hot codes, sparse (unseen: all zeros)",
            "target": "cross-fitted target means", "count": "training-row counts"}[encoding]


def _model(ctx: TaskContext, spec: ModelSpec) -> str:
    # several targets: one copy of each member per target column
    wrap = ("MultiOutputClassifier" if ctx.task_type == "classification" else "MultiOutputRegressor") \
        if ctx.targets else ""
    imports: dict[str, list[str]] = {"sklearn.multioutput": [wrap]} if wrap else {}
    for member in spec.members:
        module, _, name = member.estimator.rpartition(".")
        if images.scripted(member.estimator):  # defined below, not imported
            continue
        if name not in imports.setdefault(module, []):
            imports[module].append(name)
    threads = any(families.threads_param(m.estimator) for m in spec.members)
    tuning = any(m.tune is not None for m in spec.members)
    out = [*(["import os"] if threads or tuning else []), *(["import time", "", "import optuna"] if tuning else []),
           *([""] if threads or tuning else [])]
    out += [f"from {module} import {', '.join(names)}" for module, names in imports.items()]
    if any(images.scripted(m.estimator) for m in spec.members):
        out += ["", "", images.class_source(present=out)]
    if threads:
        out += ["", "THREADS = max(1, int(os.environ.get(\"OMP_NUM_THREADS\") or os.cpu_count() or 1))  "
                "# the executor's share of the cores"]
    if any(m.target == "log1p" for m in spec.members):
        out += ["", "", "def signed_log1p(y):", "    return np.sign(y) * np.log1p(np.abs(y))", "", "",
                "def signed_expm1(z):", "    return np.sign(z) * np.expm1(np.abs(z))"]
    if tuning:
        out += ["", "", _TUNING.strip("\n").replace("__FOLD_SCORE__", _fold_score(ctx))]
        for index, member in enumerate(spec.members):
            if member.tune is not None:
                out += _tuned_member(index + 1, member)
    out += ["", "", "def make_models():",
            '    """Fresh, unfitted blend members with their weights: the train block fits them, predict averages them."""',
            "    return ["]
    out += [f"        ({member.weight!r}, "
            f"{_wrapped(wrap, f'member_{i + 1}(PARAMS_{i + 1})' if member.tune else _member_expr(member))}),"
            for i, member in enumerate(spec.members)]
    out += ["    ]"]
    return "\n".join(out)


def _wrapped(wrap: str, expression: str) -> str:
    return f"{wrap}({expression})" if wrap else expression


def _tuned_member(number: int, member: MemberSpec) -> list[str]:
    path = member.estimator
    tune = member.tune
    params = {k: v for k, v in families.fit_params(path, member.params).items() if k != "random_state"}
    space = families.search_space(path)
    title = families.title_of(path)
    return [
        "", "",
        f"# Member {number} ({title}): its parameters start here and are tuned on the training rows below.",
        f"PARAMS_{number} = {_py(params)}",
        f"SPACE_{number} = {_py(space)}",
        "", "",
        f"def member_{number}(params):",
        f"    return {_member_expr(member, params_name='params')}",
        "", "",
        f"PARAMS_{number} = tuned({f'member {number} ({title})'!r}, member_{number}, PARAMS_{number}, SPACE_{number}, "
        f"seconds={tune.seconds!r}, trials={tune.trials!r},",
        f"                   folds={tune.folds!r}, max_rows={tune.max_rows!r})",
    ]


_TUNING = '''
optuna.logging.set_verbosity(optuna.logging.WARNING)


def fold_score(model, X, y):
    """The task's metric on held-out training rows, as a number to maximise."""
__FOLD_SCORE__


def suggest(trial, name, space):
    """One value for parameter ``name`` from its range: ("int"|"float", low, high, log) or ("cat", choices)."""
    if space[0] == "cat":
        return trial.suggest_categorical(name, list(space[1]))
    kind, low, high, log = space
    return (trial.suggest_int if kind == "int" else trial.suggest_float)(name, low, high, log=log)


def within(value, space):
    if space[0] == "cat":
        return value in space[1]
    return isinstance(value, (int, float)) and not isinstance(value, bool) and space[1] <= value <= space[2]


def tuned(name, make, start, space, *, seconds, trials, folds, max_rows):
    """The parameters an Optuna TPE study finds best within ``seconds`` (or ``trials``), starting from ``start``.

    Every trial is scored by cross-validation on the training rows only (at most ``max_rows`` of them); the
    validation rows stay unseen, so the framework's score of val_predictions.csv is still a fair one.
    """
    X, y = X_train, y_train
    if X.shape[0] > max_rows:
        stratify = y if CLASSIFICATION and y.value_counts().min() >= 2 else None
        rows, _ = train_test_split(np.arange(X.shape[0]), train_size=max_rows, random_state=SEED, stratify=stratify)
        X, y = take_rows(X, np.sort(rows)), y.iloc[np.sort(rows)]
    splitter = (StratifiedKFold if CLASSIFICATION else KFold)(n_splits=folds, shuffle=True, random_state=SEED)
    splits = list(splitter.split(X, y))

    def cross_validated(params):
        scores = [fold_score(make(params).fit(take_rows(X, fit_rows), y.iloc[fit_rows]), take_rows(X, held),
                             y.iloc[held]) for fit_rows, held in splits]
        return float(np.mean(scores))

    # the run's slice is shared by the folds one process runs in turn (the framework's cross-validated scoring):
    # a 30 s study per fold of three made one attempt take 90 s. The final run on every labelled row gets what one
    # search fold got (its input keeps the search's folds in validation_folds/), so the reserve measured from the
    # search holds: with the whole slice, chile-vote's final run took 23 s and ended 4 s past the budget.
    kept = os.path.join("input", "validation_folds")
    shared = os.environ.get("MLESTAR_FOLDS") or (len(os.listdir(kept)) if os.path.isdir(kept) else 1)
    seconds = seconds / max(1, int(shared))
    began = time.monotonic()
    start_score = cross_validated(start)  # the bar a trial must clear
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=SEED))
    study.enqueue_trial({key: start[key] for key in space if key in start and within(start[key], space[key])})
    study.optimize(lambda trial: cross_validated({**start, **{key: suggest(trial, key, value)
                                                            for key, value in space.items()}}),
                   n_trials=trials, timeout=max(1.0, seconds - (time.monotonic() - began)), catch=(Exception,))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done or study.best_value <= start_score:
        print(f"tuning {name}: {len(done)} trials in {seconds:.3g} s, none beat the starting parameters' "
              f"cross-validated score {start_score:.6g}; they are kept")
        return dict(start)
    print(f"tuning {name}: {len(done)} trials in {seconds:.3g} s, best cross-validated score "
          f"{study.best_value:.6g} (start {start_score:.6g}) with {study.best_params}")
    return {**start, **study.best_params}
'''


def _fold_score(ctx: TaskContext) -> str:
    """The body of ``fold_score`` for the task's metric (the validation score's formula on class codes)."""
    metric = ctx.metric
    if ctx.task_type == "classification":
        lines = ["    proba = np.zeros((X.shape[0], len(CLASSES)))",
                 "    proba[:, np.asarray(model.classes_, dtype=int)] = model.predict_proba(X)",
                 "    labels = list(range(len(CLASSES)))"]
        formula = {
            "logloss": "-metrics.log_loss(y, np.clip(proba, 1e-15, 1), labels=labels)",
            "roc_auc": ('metrics.roc_auc_score(y, proba[:, 1]) if len(CLASSES) == 2 else '
                        'metrics.roc_auc_score(y, proba, multi_class="ovr", labels=labels)'),
            "accuracy": "metrics.accuracy_score(y, proba.argmax(axis=1))",
            "balanced_accuracy": "metrics.balanced_accuracy_score(y, proba.argmax(axis=1))",
            "f1": ('metrics.f1_score(y, proba.argmax(axis=1), average="binary" if len(CLASSES) == 2 else "macro", '
                   'labels=labels if len(CLASSES) > 2 else None)'),
        }
        fallback = "logloss" if ctx.proba else "accuracy"
        note = "" if metric in formula else f"  # no formula for {metric!r}: {fallback} instead"
        return "\n".join([*lines, f"    return {formula.get(metric, formula[fallback])}{note}"])
    formula = {
        "rmse": "-float(np.sqrt(metrics.mean_squared_error(y, pred)))",
        "rmsle": "-float(np.sqrt(metrics.mean_squared_log_error(np.clip(y, 0, None), np.clip(pred, 0, None))))",
        "mae": "-metrics.mean_absolute_error(y, pred)",
        "r2": "metrics.r2_score(y, pred)",
    }
    note = "" if metric in formula else f"  # no formula for {metric!r}: RMSE instead"
    return "\n".join(["    pred = np.asarray(model.predict(X), dtype=float)",
                      f"    return {formula.get(metric, formula['rmse'])}{note}"])


def _member_expr(member: MemberSpec, params_name: str | None = None) -> str:
    """The member's constructor expression; with ``params_name`` its params come from that dict at run time."""
    path = member.estimator
    name = path.rpartition(".")[2]
    params = families.fit_params(path, member.params)
    args = [f"**{params_name}"] if params_name else [f"{k}={_py(v)}" for k, v in params.items() if k != "random_state"]
    if families.accepts(path, "random_state") and families.importable(path):
        args.append("random_state=SEED")
    if families.threads_param(path):
        args.append(f"{families.threads_param(path)}=THREADS")
    expr = f"{name}({', '.join(args)})"
    steps = (['SimpleImputer(strategy="median")'] if member.impute else []) + (["StandardScaler()"] if member.scale else [])
    if steps:
        expr = f"make_pipeline({', '.join(steps)}, {expr})"
    if member.target == "log1p":
        expr = (f"TransformedTargetRegressor(regressor={expr}, func=signed_log1p, inverse_func=signed_expm1, "
                f"check_inverse=False)")
    elif member.target == "standard":
        expr = f"TransformedTargetRegressor(regressor={expr}, transformer=StandardScaler())"
    return expr


def _train(ctx: TaskContext, spec: TrainSpec) -> str:
    if ctx.targets:  # early stopping and calibration reach into one estimator; the wrapper holds one per target
        spec = spec.model_copy(update={"early_stopping": False, "calibration": "none"})
    if spec.calibration != "none" and ctx.task_type == "classification":
        return _calibrated_train(spec)
    out = []
    if spec.early_stopping:
        out += [f"STOP_FRACTION, PATIENCE = {spec.stop_fraction!r}, {spec.patience!r}", "", "",
                _EARLY_STOPPING.strip("\n"), "", ""]
    if spec.folds == 1:
        fit = "fit_with_early_stopping(estimator, X_train, y_train)" if spec.early_stopping else \
            "estimator.fit(X_train, y_train)"
        out += [
            "fitted = []  # (weight, fitted model) pairs; the predict block averages their predictions",
            "for weight, estimator in make_models():",
            f"    fitted.append((weight, {fit}))",
        ]
    else:
        stop = ("fit_early_stopped(estimator, take_rows(X_train, fit_rows), y_train.iloc[fit_rows], "
                "take_rows(X_train, stop_rows), y_train.iloc[stop_rows])")
        fit = stop if spec.early_stopping else "estimator.fit(take_rows(X_train, fit_rows), y_train.iloc[fit_rows])"
        out += [
            f"FOLDS = {spec.folds}",
            "# Bagging: one copy of each member per fold of the training rows, all averaged by the predict block"
            + ("; each fold's held-out rows choose its boosting rounds." if spec.early_stopping else "."),
            ("splitter = KFold(n_splits=FOLDS, shuffle=True, random_state=SEED)  # several targets: no one to stratify on"
             if ctx.targets else
             "splitter = (StratifiedKFold if CLASSIFICATION else KFold)(n_splits=FOLDS, shuffle=True, random_state=SEED)"),
            "fitted = []  # (weight, fitted model) pairs",
            "for fit_rows, stop_rows in splitter.split(X_train, y_train):",
            "    for weight, estimator in make_models():",
            f"        fitted.append((weight / FOLDS, {fit}))",
        ]
    return "\n".join(out)


def _calibrated_train(spec: TrainSpec) -> str:
    folds = max(3, spec.folds)
    method = ('"isotonic" if X_train.shape[0] >= 1000 else "sigmoid"  # isotonic needs many rows; sigmoid holds up '
              "on few" if spec.calibration == "auto" else repr(spec.calibration))
    return "\n".join([
        "from sklearn.calibration import CalibratedClassifierCV",
        "from sklearn.ensemble import VotingClassifier",
        "",
        f"CALIBRATION = {method}",
        f"FOLDS = {folds}",
        "# Calibrated probabilities: the blend (members' weighted mean) is fitted on FOLDS - 1 folds of the training rows",
        "# and its probabilities mapped on the held-out fold, once per fold; the predict block averages the FOLDS copies.",
        "# Boosting rounds are not early-stopped inside it.",
        "members = make_models()",
        "blend_model = members[0][1] if len(members) == 1 else VotingClassifier(",
        '    [(f"member_{i}", model) for i, (_, model) in enumerate(members)], voting="soft",',
        "    weights=[weight for weight, _ in members])",
        "splitter = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)",
        "calibrated = CalibratedClassifierCV(blend_model, method=CALIBRATION, cv=splitter, ensemble=True)",
        "fitted = [(1.0, calibrated.fit(X_train, y_train))]  # (weight, fitted model) pairs, as the predict block expects",
    ])


_EARLY_STOPPING = '''
BOOSTERS = ("lightgbm", "xgboost", "catboost")


def innermost(estimator):
    """The model inside target transforms and pipelines, where its boosting settings live."""
    while True:
        if isinstance(estimator, TransformedTargetRegressor):
            estimator = estimator.regressor_ if hasattr(estimator, "regressor_") else estimator.regressor
        elif isinstance(estimator, Pipeline):
            estimator = estimator.steps[-1][1]
        else:
            return estimator


def booster(estimator):
    """The boosting library whose own early stopping the model uses (LightGBM, XGBoost or CatBoost), else None;
    a member with its own scaler or imputer (a pipeline) is fitted as scikit-learn's models are."""
    if isinstance(estimator, Pipeline):
        return None
    library = type(innermost(estimator)).__module__.split(".")[0]
    return library if library in BOOSTERS else None


def is_lightgbm(estimator):
    return booster(estimator) == "lightgbm"


def fit_early_stopped(estimator, X_fit, y_fit, X_stop, y_stop):
    """Fit with boosting rounds (or epochs) chosen on held-out training rows.

    LightGBM, XGBoost and CatBoost evaluate on (X_stop, y_stop); scikit-learn's boosting and networks stop on an
    internal split of the rows they are fitted on; other models are fitted as usual.
    """
    model = innermost(estimator)
    library = booster(estimator)
    if library is not None:
        y_eval = y_stop
        if isinstance(estimator, TransformedTargetRegressor):  # the evaluation target must be transformed too
            if estimator.func is not None:
                y_eval = estimator.func(np.asarray(y_stop, dtype=float))
            else:
                scaler = clone(estimator.transformer).fit(np.asarray(y_fit, dtype=float).reshape(-1, 1))
                y_eval = scaler.transform(np.asarray(y_stop, dtype=float).reshape(-1, 1)).ravel()
        if library == "lightgbm":
            import lightgbm

            return estimator.fit(X_fit, y_fit, eval_set=[(X_stop, y_eval)],
                                 callbacks=[lightgbm.early_stopping(PATIENCE, verbose=False)])
        if library == "xgboost":  # predictions then use the best round
            model.set_params(early_stopping_rounds=PATIENCE)
            return estimator.fit(X_fit, y_fit, eval_set=[(X_stop, y_eval)], verbose=False)
        # CatBoost keeps the trees up to its best round (use_best_model)
        return estimator.fit(X_fit, y_fit, eval_set=(X_stop, y_eval), early_stopping_rounds=PATIENCE)
    settings = model.get_params()
    if "n_iter_no_change" in settings:
        changes = {"n_iter_no_change": min(PATIENCE, 20), "validation_fraction": STOP_FRACTION}
        if "early_stopping" in settings:
            changes["early_stopping"] = True
        model.set_params(**changes)
    return estimator.fit(X_fit, y_fit)


def best_rounds(model):
    """(the parameter that sets the boosting rounds, how many early stopping kept) of a fitted booster."""
    library = type(model).__module__.split(".")[0]
    if library == "catboost":
        return "iterations", model.tree_count_
    if library == "xgboost":
        try:
            return "n_estimators", model.best_iteration + 1
        except AttributeError:  # it never stopped early
            return "n_estimators", model.n_estimators
    return "n_estimators", model.best_iteration_ or model.n_estimators


def fit_with_early_stopping(estimator, X, y):
    """Rounds chosen on an inner split of the training rows; a booster is then refitted on all of them."""
    if booster(estimator) is None:
        return fit_early_stopped(estimator, X, y, None, None)
    stratify = y if CLASSIFICATION and y.value_counts().min() >= 2 else None
    X_fit, X_stop, y_fit, y_stop = train_test_split(X, y, test_size=STOP_FRACTION, random_state=SEED,
                                                    stratify=stratify)
    probe = fit_early_stopped(clone(estimator), X_fit, y_fit, X_stop, y_stop)
    key, rounds = best_rounds(innermost(probe))
    final = clone(estimator)
    innermost(final).set_params(**{key: max(1, int(rounds))})
    return final.fit(X, y)
'''


def _predict(ctx: TaskContext, spec: PredictSpec) -> str:
    if spec.output == "multi":
        return _predict_multi(ctx, spec)
    out = []
    if ctx.task_type == "classification":
        out += [_BLEND_CLASSES.strip("\n")]
    else:
        out += [_BLEND_VALUES.strip("\n")]
    out += ["", "", "def to_frame(ids, scores):", f'    """{_FORMAT_DOC[spec.output]}"""',
            "    frame = pd.DataFrame({ID: ids.to_numpy()})"]
    out += ["    " + line for line in _FORMAT[spec.output](spec.metric)]
    out += ["    return frame", "", ""]
    out += [
        "val_predictions = to_frame(valid[ID], blend(X_valid))",
        "submission = to_frame(test[ID], blend(X_test))",
        *score_lines(ctx, spec),
        'val_predictions.to_csv("val_predictions.csv", index=False)',
        'submission.to_csv("submission.csv", index=False)',
        'print(f"Final Validation Performance: {score:.6f}")',
    ]
    return "\n".join(out)


def _predict_multi(ctx: TaskContext, spec: PredictSpec) -> str:
    """Several targets: each prediction column is what that target's own script would write, scored on its own;
    the score is their mean, as the framework scores it."""
    classification = ctx.task_type == "classification"
    each = "positive" if classification and ctx.proba else "label" if classification else "value"
    if each == "positive":
        fill = "frame[name] = scores[:, t, -1]  # the probability of the larger label"
    elif each == "label":
        fill = "frame[name] = CLASSES[scores[:, t].argmax(axis=1)]"
    else:
        fill = "frame[name] = " + ("np.clip(scores[:, t], 0, None)  # RMSLE needs non-negative values"
                                   if spec.metric == "rmsle" else "scores[:, t]")
    return "\n".join([
        (_BLEND_MULTI_CLASSES if classification else _BLEND_VALUES).strip("\n"), "", "",
        "def to_frame(ids, scores):",
        '    """The sample\'s columns: the id, then one column per target."""',
        "    frame = pd.DataFrame({ID: ids.to_numpy()})",
        "    for t, name in enumerate(TARGETS):",
        f"        {fill}",
        "    return frame", "", "",
        "val_predictions = to_frame(valid[ID], blend(X_valid))",
        "submission = to_frame(test[ID], blend(X_test))",
        *score_lines(ctx, spec),
        'val_predictions.to_csv("val_predictions.csv", index=False)',
        'submission.to_csv("submission.csv", index=False)',
        'print(f"Final Validation Performance: {score:.6f}")',
    ])


_BLEND_MULTI_CLASSES = '''
def probabilities(model, X):
    """Per target, class probabilities in CLASSES order: shape (rows, targets, classes)."""
    out = np.zeros((X.shape[0], len(TARGETS), len(CLASSES)))
    if hasattr(model, "predict_proba"):
        for t, (estimator, proba) in enumerate(zip(model.estimators_, model.predict_proba(X))):
            out[:, t, np.asarray(estimator.classes_, dtype=int)] = proba
    else:
        codes = np.asarray(model.predict(X), dtype=int)
        for t in range(len(TARGETS)):
            out[np.arange(X.shape[0]), t, codes[:, t]] = 1.0
    return out


def blend(X):
    """Weighted mean of the fitted models' class probabilities."""
    return sum(weight * probabilities(model, X) for weight, model in fitted) / sum(w for w, _ in fitted)
'''

_BLEND_CLASSES = '''
def probabilities(model, X):
    """Class probabilities in CLASSES order (a fold may miss a class); hard votes for models without them."""
    out = np.zeros((X.shape[0], len(CLASSES)))
    if hasattr(model, "predict_proba"):
        out[:, np.asarray(model.classes_, dtype=int)] = model.predict_proba(X)
    else:
        out[np.arange(X.shape[0]), np.asarray(model.predict(X), dtype=int)] = 1.0
    return out


def blend(X):
    """Weighted mean of the fitted models' class probabilities."""
    return sum(weight * probabilities(model, X) for weight, model in fitted) / sum(w for w, _ in fitted)
'''

_BLEND_VALUES = '''
def blend(X):
    """Weighted mean of the fitted models' predictions."""
    return sum(weight * np.asarray(model.predict(X), dtype=float) for weight, model in fitted) / sum(
        w for w, _ in fitted)
'''

_FORMAT_DOC = {
    "label": "The sample's columns: the id, then the most probable label.",
    "positive": "The sample's columns: the id, then the probability of the positive class (the larger label).",
    "wide": "The sample's columns: the id, then one probability column per class, named by its label.",
    "value": "The sample's columns: the id, then the predicted value.",
}
_FORMAT = {
    "label": lambda metric: ["frame[PRED_COLUMNS[0]] = CLASSES[scores.argmax(axis=1)]"],
    "positive": lambda metric: ["frame[PRED_COLUMNS[0]] = scores[:, -1]"],
    "wide": lambda metric: [
        "position = {str(label): i for i, label in enumerate(CLASSES)}",
        "scores = scores / np.clip(scores.sum(axis=1, keepdims=True), 1e-12, None)",
        "for name in PRED_COLUMNS:",
        "    frame[name] = scores[:, position[name]] if name in position else 0.0",
    ],
    "value": lambda metric: ["frame[PRED_COLUMNS[0]] = " + ("np.clip(scores, 0, None)  # RMSLE needs non-negative values"
                                                             if metric == "rmsle" else "scores")],
}


def score_lines(ctx: TaskContext, spec: PredictSpec) -> list[str]:
    """The task metric on the validation predictions, computed the way the framework's scorer does."""
    pred = "val_predictions[PRED_COLUMNS[0]]"
    metric = spec.metric
    if spec.output == "multi":  # y_valid holds every target: each column is scored as its own task, then averaged
        classification = ctx.task_type == "classification"
        each = "positive" if classification and ctx.proba else "label" if classification else "value"
        return ["", "", "def target_score(y_valid, val_predictions, PRED_COLUMNS):",
                '    """The metric for one target\'s column, as if it were the only one."""',
                *("    " + line for line in score_lines(ctx, PredictSpec(metric=metric, output=each))),
                "    return score", "", "",
                "score = float(np.mean([target_score(y_valid[name], val_predictions, [name]) for name in TARGETS]))"]
    if spec.output == "wide":
        lines = ["# Validation labels as positions among the probability columns, as the framework scores them.",
                 "truth = np.array([PRED_COLUMNS.index(str(label)) for label in y_valid])",
                 "matrix = val_predictions[PRED_COLUMNS].to_numpy(dtype=float)"]
        positions = "labels=list(range(len(PRED_COLUMNS)))"
        if metric == "logloss":
            return [*lines, f"score = metrics.log_loss(truth, np.clip(matrix, 1e-15, 1 - 1e-15), {positions})"]
        if metric == "roc_auc":
            return [*lines, f'score = metrics.roc_auc_score(truth, matrix, multi_class="ovr", {positions})']
        note = f"no formula for {metric!r}: accuracy shown, the framework scores"
        return [*lines, f"score = metrics.accuracy_score(truth, matrix.argmax(axis=1))  # {note}"]
    if spec.output == "positive":
        positive = "(y_valid == CLASSES[-1]).astype(int)"
        if metric == "logloss":
            return [f"score = metrics.log_loss({positive}, np.clip({pred}, 1e-15, 1 - 1e-15))"]
        if metric == "roc_auc":
            return [f"score = metrics.roc_auc_score({positive}, {pred})"]
        return [f"score = metrics.roc_auc_score({positive}, {pred})  # no formula for {metric!r}: ROC AUC shown"]
    if spec.output == "label":
        if metric == "balanced_accuracy":
            return [f"score = metrics.balanced_accuracy_score(y_valid, {pred})"]
        if metric == "f1":
            return ["labels = np.unique(y_valid)",
                    f'score = (metrics.f1_score(y_valid, {pred}, average="binary", pos_label=labels.max())',
                    f'         if len(labels) <= 2 else metrics.f1_score(y_valid, {pred}, average="macro"))']
        note = "" if metric == "accuracy" else f"  # no formula for {metric!r}: accuracy shown, the framework scores"
        return [f"score = metrics.accuracy_score(y_valid, {pred}){note}"]
    formulas = {
        "rmse": f"float(np.sqrt(metrics.mean_squared_error(y_valid, {pred})))",
        "rmsle": f"float(np.sqrt(metrics.mean_squared_log_error(y_valid, np.clip({pred}, 0, None))))",
        "mae": f"metrics.mean_absolute_error(y_valid, {pred})",
        "r2": f"metrics.r2_score(y_valid, {pred})",
    }
    if metric in formulas:
        return [f"score = {formulas[metric]}"]
    return [f"score = {formulas['rmse']}  # no formula for {metric!r}: RMSE shown, the framework scores"]


def predict_spec(ctx: TaskContext) -> PredictSpec:
    return PredictSpec(metric=ctx.metric, output=ctx.output_kind())
