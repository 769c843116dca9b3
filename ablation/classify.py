"""Guess which stage of an ML script a statement belongs to (load data, preprocess, model, train, predict) from the
calls and names it contains; used when a script carries no `# [block: kind]` markers."""

from __future__ import annotations

import ast
import re

# When one statement does several things, the first signal in this order names it: a statement that fits and
# scores is "train" even though it also subscripts a frame.
_PRIORITY = ("write", "train", "predict", "model", "load", "template", "output", "preprocess", "imports")
_KIND = {
    "write": "predict",
    "train": "train",
    "predict": "predict",
    "model": "model",
    "load": "load_data",
    "output": "predict",
    "preprocess": "preprocess",
    "imports": "imports",
}

_READS = {"read_csv", "read_parquet", "read_feather", "read_json", "read_excel", "read_table", "read_pickle",
          "loadtxt", "genfromtxt"}
_WRITES = {"to_csv", "to_parquet", "to_feather", "to_excel", "to_json", "savetxt"}
_PREDICTS = {"predict", "predict_proba", "predict_log_proba", "decision_function"}
_CROSS_VALIDATION = {"cross_val_score", "cross_validate", "cross_val_predict"}
_METRIC = re.compile(r"(_score|_error|_loss)$|^(log_loss|rmse|mae|mse|auc)$")
_PREPROCESS_CALLS = {
    "fillna", "dropna", "get_dummies", "astype", "map", "apply", "applymap", "replace", "drop", "drop_duplicates",
    "merge", "concat", "clip", "log1p", "transform", "fit_transform", "factorize", "cut", "qcut", "groupby",
    "agg", "select_dtypes", "rename", "to_datetime", "interpolate", "train_test_split", "pivot", "pivot_table",
    "melt", "explode", "rank", "shift", "diff", "rolling", "cumsum", "isna", "isnull", "notna", "where", "mask",
    "make_column_transformer", "label_binarize",
}
_MODEL_NAME = re.compile(r"(Classifier|Regressor|Regression|SVC|SVR|Pipeline|Model|SearchCV)$")
_TRANSFORMER_NAME = re.compile(r"(Scaler|Encoder|Imputer|Vectorizer|Transformer|PCA|SVD|Features|Discretizer|"
                               r"Binarizer|Normalizer|Selector|SelectKBest|Tokenizer|Dataset|DMatrix|Pool)$")
_TRANSFORMER_RECEIVER = re.compile(r"scal|encod|imput|vectori|pca|svd|transform|select|token|binar|normali",
                                   re.IGNORECASE)
_ML_PACKAGES = {"sklearn", "lightgbm", "xgboost", "catboost"}
_TRANSFORM_MODULES = {"preprocessing", "impute", "feature_extraction", "feature_selection", "decomposition",
                      "compose", "random_projection", "kernel_approximation", "manifold"}
_NON_MODEL_MODULES = {"model_selection", "metrics", "utils", "datasets", "base", "exceptions", "callback",
                      "callbacks", "plotting", "inspection"}
_SCORE_WORDS = ("validation", "score", "performance", "auc", "accuracy", "rmse", "metric")
_SCORE_NAMES = ("score", "auc", "rmse", "acc", "metric", "loss", "perf")
_FRAME_ATTRS = {"columns", "values", "dtypes", "index"}


class StatementKinds:
    """Classifies the statements of one parsed script; it knows the script's imports and top-level functions, so
    `lgb.LGBMClassifier(...)` is a model and a call to the script's own `add_features()` is preprocessing."""

    def __init__(self, tree: ast.Module) -> None:
        self._modules = _import_map(tree)
        self._functions = {s.name: s for s in tree.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}
        self._function_signal: dict[str, str | None] = {}

    def kind(self, stmts: list[ast.stmt], after_model: bool) -> str | None:
        """The kind of these statements, or None for docstrings (they join whatever block follows).

        `after_model` says a model or train block came earlier: reading the sample submission then belongs to
        writing the submission, not to loading data.
        """
        if all(_is_docstring(s) for s in stmts):
            return None
        signals: set[str] = set()
        for stmt in stmts:
            signals |= self._signals(stmt)
        top = _top(signals)
        if top == "template":
            return "predict" if after_model else "load_data"
        return _KIND.get(top, "other")

    def _signals(self, stmt: ast.stmt) -> set[str]:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            return {"imports"}
        # a definition does what its body does; its decorators do not say
        roots = stmt.body if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else [stmt]
        signals: set[str] = set()
        for root in roots:
            for node in ast.walk(root):
                if isinstance(node, ast.Call):
                    signals |= self._call_signals(node)
                elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                    signals |= _assign_signals(node)
                elif isinstance(node, ast.Name) and _is_output_name(node.id):
                    signals.add("output")
                elif isinstance(node, (ast.Import, ast.ImportFrom)):
                    signals.add("imports")
        return signals

    def _call_signals(self, call: ast.Call) -> set[str]:
        name = _callee_name(call.func)
        if name is None:
            return set()
        if isinstance(call.func, ast.Name) and name in self._functions:
            signal = self._signal_of_function(name)
            return {signal} if signal else set()
        if name in _WRITES:
            return {"write"}
        if name in _READS:
            return {"template"} if _mentions(call, ("sample_submission",)) else {"load"}
        if name == "open" and _mentions(call, ("input",)):
            return {"load"}
        if name in _PREDICTS:
            if _mentions(call, ("test",)):
                return {"predict"}
            return {"train"} if _mentions(call, ("val",)) else {"predict"}
        if name in ("fit", "fit_predict"):
            receiver = _receiver_name(call.func)
            return {"preprocess"} if receiver and _TRANSFORMER_RECEIVER.search(receiver) else {"train"}
        module = self._module_of(call.func)
        if name == "train" and module.split(".")[0] in _ML_PACKAGES:
            return {"train"}
        if name in _CROSS_VALIDATION or _METRIC.search(name):
            return {"train"}
        if name == "print":
            return {"train"} if _mentions_score(call) else set()
        if name == "make_pipeline":
            return {"model"}
        if name in _PREPROCESS_CALLS:
            return {"preprocess"}
        if name[:1].isupper():
            return _constructor_signal(name, module)
        return set()

    def _signal_of_function(self, name: str) -> str | None:
        if name not in self._function_signal:
            self._function_signal[name] = None  # a recursive call says nothing about the function
            signals = self._signals(self._functions[name])
            top = _top(signals)
            self._function_signal[name] = "load" if top == "template" else top
        return self._function_signal[name]

    def _module_of(self, func: ast.expr) -> str:
        """Dotted module a callee comes from (`lgb.LGBMClassifier` -> "lightgbm"), "" when not imported."""
        parts = []
        while isinstance(func, ast.Attribute):
            parts.append(func.attr)
            func = func.value
        if not isinstance(func, ast.Name) or func.id not in self._modules:
            return ""
        middle = list(reversed(parts[1:])) if parts else []
        return ".".join([self._modules[func.id], *middle])


def _top(signals: set[str]) -> str | None:
    return next((s for s in _PRIORITY if s in signals), None)


def _constructor_signal(name: str, module: str) -> set[str]:
    if _MODEL_NAME.search(name):
        return {"model"}
    if _TRANSFORMER_NAME.search(name):
        return {"preprocess"}
    package, _, rest = module.partition(".")
    if package not in _ML_PACKAGES:
        return set()
    submodule = rest.split(".")[0]
    if submodule in _TRANSFORM_MODULES:
        return {"preprocess"}
    if submodule in _NON_MODEL_MODULES:
        return set()
    return {"model"}


def _assign_signals(node: ast.Assign | ast.AugAssign | ast.AnnAssign) -> set[str]:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    if any(isinstance(t, (ast.Subscript, ast.Attribute)) for t in targets):
        return {"preprocess"}  # df["col"] = ... or df.col = ...: a column transform
    value = node.value
    if value is None:
        return set()
    for sub in ast.walk(value):
        if isinstance(sub, ast.Subscript) or (isinstance(sub, ast.Attribute) and sub.attr in _FRAME_ATTRS):
            return {"preprocess"}  # selecting columns or rows of a frame
    return set()


def _is_output_name(name: str) -> bool:
    lowered = name.lower()
    return "submission" in lowered or lowered == "sub" or ("pred" in lowered and "test" in lowered)


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def _callee_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _receiver_name(func: ast.expr) -> str | None:
    """The object a method is called on: `scaler` in `scaler.fit(X)`, `Pipeline` in `Pipeline(...).fit(X)`."""
    if not isinstance(func, ast.Attribute):
        return None
    value = func.value
    if isinstance(value, ast.Call):
        value = value.func
    return _callee_name(value)


def _mentions(call: ast.Call, words: tuple[str, ...]) -> bool:
    """Whether an argument of the call names a variable, attribute or string containing one of the words."""
    for arg in [*call.args, *(k.value for k in call.keywords)]:
        for node in ast.walk(arg):
            text = None
            if isinstance(node, ast.Name):
                text = node.id
            elif isinstance(node, ast.Attribute):
                text = node.attr
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
            if text is not None and any(w in text.lower() for w in words):
                return True
    return False


def _mentions_score(call: ast.Call) -> bool:
    for arg in call.args:
        for node in ast.walk(arg):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if any(w in node.value.lower() for w in _SCORE_WORDS):
                    return True
            elif isinstance(node, ast.Name) and any(w in node.id.lower() for w in _SCORE_NAMES):
                return True
    return False


def _import_map(tree: ast.Module) -> dict[str, str]:
    """Local name -> module it was imported from, over every import in the script."""
    modules: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    modules[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    modules[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                modules[alias.asname or alias.name] = node.module
    return modules
