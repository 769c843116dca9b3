"""Deterministic checks on a solution script's source, without running it: leakage (fits on validation or test rows,
their statistics in training features, the target left among the features) and provided input files it never reads.
MLE-STAR asks an LLM both questions (its checkers are off by default); here the script's AST answers them."""

from __future__ import annotations

import ast
import copy
import fnmatch
import re
from dataclasses import dataclass, field, replace
from core.pyast import parse as parse_python


@dataclass(frozen=True)
class Finding:
    kind: str  # "leakage" | "data_usage"
    line: int  # 1-based line in the script; 0 when the finding is about the script as a whole
    message: str  # one sentence naming the variable and what is wrong, starting "line N: " when line > 0


def check_script(code: str, files: list[str]) -> list[Finding]:
    """Every finding about ``code``: leakage first (in line order), then one per provided file it never reads."""
    return leakage_findings(code) + data_usage_findings(code, files)


def leakage_findings(code: str) -> list[Finding]:
    """Fits on valid/test-derived data, held-out statistics used on training data, and an obvious target among the
    features, in line order. A script that does not parse has no findings: running it reports the SyntaxError."""
    try:
        tree = parse_python(code)
    except SyntaxError:
        return []
    return _Leakage(tree).run()


def data_usage_findings(code: str, files: list[str]) -> list[Finding]:
    """One finding per provided file that ``code`` never references (see ``unused_files``)."""
    return [Finding("data_usage", 0, f"./input/{name} is provided but the script never reads it: use what it holds "
                                     f"(merge it, or read it as extra rows or features) or drop it on purpose")
            for name in unused_files(code, files)]


def unused_files(code: str, files: list[str]) -> list[str]:
    """The names in ``files`` (as found in ./input/) that ``code`` never references.

    A file is referenced when a string in the code (docstrings aside) contains its name, is its stem as a path part
    (``f"./input/{name}.csv"`` with ``name`` in ``["train", "stores"]``, ``os.path.join(DIR, "stores")``), is a glob
    pattern matching it (``"*.csv"``), or when the script lists ./input itself (``os.listdir``, ``os.scandir``,
    ``Path.iterdir``, ``os.walk``). A script that does not parse references everything: running it fails anyway.
    """
    try:
        tree = parse_python(code)
    except SyntaxError:
        return []
    strings, glob_patterns, lists_input = _references(tree)
    return [name for name in files if not (lists_input or _referenced(name, strings, glob_patterns))]


# --- data usage ------------------------------------------------------------------------------------------------

_LISTERS = {"listdir", "scandir", "iterdir", "walk"}
_GLOBBERS = {"glob", "iglob", "rglob"}


def _references(tree: ast.Module) -> tuple[list[str], list[str], bool]:
    """(string constants outside docstrings, strings inside glob calls, whether the script lists ./input)."""
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)
                  and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}
    strings = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
               and isinstance(node.value, str) and id(node) not in docstrings]
    assigned: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
    glob_patterns: list[str] = []
    lists_input = False
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node)
        if name in _GLOBBERS:
            glob_patterns += _constants(node, assigned)
        elif name in _LISTERS:
            lists_input = lists_input or _lists_input(_constants(node, assigned), name)
    return strings, glob_patterns, lists_input


def _constants(node: ast.AST, assigned: dict[str, list[ast.expr]], depth: int = 0) -> list[str]:
    """String constants under ``node`` in source order, following names to what was assigned to them."""
    found: list[str] = []
    for child in _walk_in_order(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str):
            found.append(child.value)
        elif isinstance(child, ast.Name) and depth < 5:
            for value in assigned.get(child.id, []):
                found += _constants(value, assigned, depth + 1)
    return found


def _walk_in_order(node: ast.AST):
    yield node
    for child in ast.iter_child_nodes(node):
        yield from _walk_in_order(child)


def _lists_input(strings: list[str], lister: str) -> bool:
    """True when a listing call covers ./input: its directory is ``input`` (or unknown, so given the benefit)."""
    if not strings:
        return True
    last = strings[-1].replace("\\", "/").rstrip("/").split("/")[-1]
    return last == "input" or (lister == "walk" and last in ("", "."))


def _referenced(name: str, strings: list[str], glob_patterns: list[str]) -> bool:
    base = name.replace("\\", "/").split("/")[-1]
    stem = base.rsplit(".", 1)[0]
    as_part = re.compile(rf"(^|[/\\]){re.escape(stem)}(\.|$)")
    for text in strings:
        if base in text or name in text or as_part.search(text):
            return True
        pattern = text.replace("\\", "/").split("/")[-1]
        wild = any(c in pattern for c in "*?[")
        # A bare "*" is a glob only inside a glob call: elsewhere it is more likely `print("*" * 40)`.
        if wild and pattern.strip("*?") and fnmatch.fnmatch(base, pattern):
            return True
    for text in glob_patterns:
        pattern = text.replace("\\", "/").split("/")[-1]
        if pattern and any(c in pattern for c in "*?[") and fnmatch.fnmatch(base, pattern):
            return True
    return False


def _call_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


# --- leakage: vocabulary ---------------------------------------------------------------------------------------

_KINDS = ("train", "valid", "test")
_HELD = ("valid", "test")
_READERS = {"read_csv", "read_parquet", "read_feather", "read_json", "read_excel", "read_table", "read_pickle",
            "read_hdf", "read_orc", "load", "loadtxt", "genfromtxt", "load_npz"}
_PATH_KEYWORDS = {"filepath_or_buffer", "path", "path_or_buf", "io", "fname", "file", "source"}
_FITS = {"fit", "fit_transform", "fit_resample", "partial_fit", "fit_predict", "fit_on_texts"}
_CROSS_VALIDATION = {"cross_val_score", "cross_validate", "cross_val_predict", "learning_curve",
                     "validation_curve", "permutation_test_score"}
_BOOSTING_MODULES = {"lgb", "lightgbm", "xgb", "xgboost"}
# Results that hold the rows of their argument, not of the fitted object they are called on.
_APPLIES = {"transform", "predict", "predict_proba", "predict_log_proba", "decision_function", "inverse_transform",
            "score_samples", "kneighbors"}
_STATISTICS = {"mean", "median", "std", "var", "max", "min", "quantile", "value_counts", "mode", "describe",
               "nanmean", "nanmedian", "nanstd", "nanvar", "nanmax", "nanmin", "percentile", "nanpercentile",
               "nanquantile", "amax", "amin"}
_NUMERIC_MODULES = {"np", "numpy", "statistics"}
# Attributes and calls that say something about the shape or names of the data, not its values.
_METADATA = {"columns", "dtypes", "dtype", "shape", "ndim", "size", "index", "name", "names", "empty", "nbytes"}
_NO_DATA_CALLS = {"len", "print", "isinstance", "type", "str", "repr", "hasattr", "id", "range", "format", "int",
                  "float", "bool", "score"}
_LOGGERS = {"logging", "logger", "log"}
# Keyword arguments that name monitoring or reference data rather than the rows a call works on.
_SIDE_KEYWORDS = {"eval_set", "eval_sets", "valid_sets", "validation_data", "reference", "evals", "eval_names",
                  "valid_names", "callbacks"}
_ROW_PICKERS = {"head", "tail", "take", "query", "sample"}
_MASKS = {"isin", "notna", "notnull", "isna", "isnull", "between", "eq", "ne", "gt", "lt", "ge", "le", "duplicated"}
# Methods that keep every column of a frame (used to follow a frame whose target column is still in it).
_COLUMNS_KEPT = {"copy", "fillna", "dropna", "reset_index", "sample", "sort_values", "sort_index", "head", "tail",
                 "replace", "drop_duplicates", "astype", "infer_objects", "convert_dtypes", "ffill", "bfill"}
_TARGET_CHAIN = {"to_numpy", "astype", "ravel", "copy", "map", "fillna", "reshape", "squeeze", "tolist"}
_FRAME_ATTRIBUTES = _METADATA | {"values", "T", "iloc", "loc", "at", "iat", "str", "dt", "cat", "plot", "style"}

Origins = frozenset  # file names ("train.csv", "test.csv", ...) and "@function:index" parameter marks


def _kind(origin: str) -> str | None:
    """Which of train, valid and test a file name or path part names; None when it names none or several."""
    kinds = [kind for kind in _KINDS if re.search(rf"(?<![a-z]){kind}", origin.lower())]
    return kinds[0] if len(kinds) == 1 else None


def _held(origins: Origins) -> list[str]:
    return sorted(o for o in origins if not o.startswith("@") and _kind(o) in _HELD)


def _has_train(origins: Origins) -> bool:
    return any(not o.startswith("@") and _kind(o) == "train" for o in origins)


def _mixed(origins: Origins) -> bool:
    return _has_train(origins) and bool(_held(origins))


def _files(origins: Origins) -> frozenset:
    return frozenset(o for o in origins if not o.startswith("@"))


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


class _Elide(ast.NodeTransformer):
    def visit_Call(self, node: ast.Call) -> ast.Call:
        self.generic_visit(node)
        node.args, node.keywords = [ast.Name("...")], []
        return node


def _short(node: ast.AST, limit: int = 48) -> str:
    """Source text for a message: as written when short, with call arguments elided, then cut."""
    text = ast.unparse(node)
    if len(text) > limit:
        text = ast.unparse(_Elide().visit(copy.deepcopy(node)))
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _keyword(call: ast.Call, *names: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg in names), None)


def _argument(call: ast.Call, index: int, *names: str) -> ast.expr | None:
    if len(call.args) > index and not isinstance(call.args[index], ast.Starred):
        return call.args[index]
    return _keyword(call, *names)


def _rowwise(call: ast.Call) -> bool:
    axis = _keyword(call, "axis")
    return isinstance(axis, ast.Constant) and axis.value in (1, "columns")


def _constant_labels(node: ast.expr | None, constant_of) -> frozenset | None:
    """The column labels a drop/select names when they are all constants (or names bound to one), else None."""
    if node is None:
        return None
    items = node.elts if isinstance(node, (ast.List, ast.Tuple, ast.Set)) else [node]
    labels = [constant_of(item) for item in items]
    return None if any(label is None for label in labels) else frozenset(labels)


# --- leakage: the analysis -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Statistic:
    line: int
    text: str  # e.g. X_test['a'].mean()
    data: str  # e.g. X_test
    origins: Origins
    holder: str = ""  # the name it reached the statement through, "" when written inline


@dataclass(frozen=True)
class _Columns:
    """The columns a frame holds, relative to one read of a file: all but ``labels``, or only ``labels``."""
    group: tuple
    only: bool
    labels: frozenset


@dataclass
class _Var:
    """What is known about one name."""
    origins: Origins = frozenset()
    strings: tuple = ()  # string constants it was built from, to resolve file paths
    constant: str | None = None  # its value when a string constant
    statistic: _Statistic | None = None  # a statistic of valid/test rows it holds
    columns: _Columns | None = None  # the columns of the frame it holds
    target: tuple | None = None  # (group, label or None): it holds one column of a tracked frame
    literal: list | None = None  # element nodes of the list/tuple literal assigned to it
    mapping: dict | None = None  # {constant key: value node} of the dict literal assigned to it


@dataclass(frozen=True)
class _Fitter:
    """A local function that fits on its parameter ``index`` (plus rows of ``others``), by ``callee`` at ``line``."""
    index: int
    others: Origins
    callee: str
    line: int


def _text_of(node: ast.AST) -> str:
    """The name or text a node spells itself (a name, attribute, keyword, import, string), else ''."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, (ast.keyword, ast.arg)):
        return node.arg or ""
    if isinstance(node, ast.alias):
        return node.name
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return ""


@dataclass
class _Leakage:
    """One pass over the statements in source order; function bodies are read where they are defined."""

    tree: ast.Module
    scopes: list = field(default_factory=lambda: [{}])  # name -> _Var, innermost last
    functions: dict = field(default_factory=dict)  # local function name -> parameter names
    loaders: set = field(default_factory=set)  # local functions that read a file
    fitters: dict = field(default_factory=dict)  # local function name -> [_Fitter]
    function: str | None = None  # the local function being read
    out_of_fold: set = field(default_factory=set)  # ast.dump of the X given to cross_val_predict
    early_stopping: bool = False  # the script mentions early stopping at all
    findings: dict = field(default_factory=dict)  # (line, subject) -> Finding

    def run(self) -> list[Finding]:
        for node in ast.walk(self.tree):
            self.early_stopping = self.early_stopping or "early_stopping" in _text_of(node)
            if isinstance(node, ast.Call) and _call_name(node) == "cross_val_predict":
                x = _argument(node, 1, "X")
                if x is not None:
                    self.out_of_fold.add(ast.dump(x))
        self._block(self.tree.body)
        return sorted(self.findings.values(), key=lambda f: (f.line, f.message))

    def _report(self, line: int, subject: str, message: str) -> None:
        self.findings.setdefault((line, subject), Finding("leakage", line, f"line {line}: {message}"))

    # statements

    def _block(self, body: list[ast.stmt]) -> None:
        for statement in body:
            self._statement(statement)

    def _statement(self, node: ast.stmt) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self._define(node)
        elif isinstance(node, ast.ClassDef):
            self._block(node.body)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self._scan(node.iter)
            self._loop(node)
        elif isinstance(node, (ast.While, ast.If)):
            self._scan(node.test)
            self._block(node.body)
            self._block(node.orelse)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                self._scan(item.context_expr)
                if item.optional_vars is not None:
                    self._bind(item.optional_vars, item.context_expr)
            self._block(node.body)
        elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            self._block(node.body)
            for handler in node.handlers:
                self._block(handler.body)
            self._block(node.orelse)
            self._block(node.finalbody)
        elif isinstance(node, ast.Match):
            self._scan(node.subject)
            for case in node.cases:
                self._block(case.body)
        else:
            self._simple(node)

    def _simple(self, node: ast.stmt) -> None:
        # Checks see the names as they were before this statement rebinds any of them.
        self._scan(node)
        self._statistic_use(node)
        if isinstance(node, ast.Assign):
            for target in node.targets:
                self._bind(target, node.value)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            self._bind(node.target, node.value)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            var = self._lookup(node.target.id)
            self._set(node.target.id, _Var(var.origins | self._origins(node.value)))
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                    self._drop_columns(target.value.id, _constant_labels(target.slice, self._constant))
        self._mutations(node)

    def _define(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        params = [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]
        self.functions[node.name] = params
        if any(isinstance(n, ast.Call) and self._reads(n) for n in ast.walk(node)):
            self.loaders.add(node.name)
        outer = self.function
        self.function = node.name
        self.scopes.append({name: _Var(frozenset({f"@{node.name}:{i}"})) for i, name in enumerate(params)})
        self._block(node.body)
        self.scopes.pop()
        self.function = outer

    def _loop(self, node: ast.For | ast.AsyncFor) -> None:
        elements = self._elements(node.iter)
        if elements is not None and len(elements) <= 12:
            # `for df in [train, test]:` reads the body once per frame, so `df` never mixes the two.
            for element in elements:
                self._bind(node.target, element)
                self._block(node.body)
        else:
            self._bind_all(node.target, _Var(self._origins(node.iter), self._strings(node.iter)))
            self._block(node.body)
        self._block(node.orelse)

    def _elements(self, node: ast.expr) -> list[ast.expr] | None:
        if isinstance(node, (ast.List, ast.Tuple)) and not any(isinstance(e, ast.Starred) for e in node.elts):
            return node.elts
        if isinstance(node, ast.Name):
            return self._lookup(node.id).literal
        return None

    # names

    def _lookup(self, name: str) -> _Var:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return _Var()

    def _set(self, name: str, var: _Var) -> None:
        self.scopes[-1][name] = var

    def _constant(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        return self._lookup(node.id).constant if isinstance(node, ast.Name) else None

    def _bind(self, target: ast.expr, value: ast.expr) -> None:
        if isinstance(target, ast.Name):
            self._bind_name(target.id, value)
        elif isinstance(target, (ast.Tuple, ast.List)):
            elements = self._elements(value) if not isinstance(value, ast.Name) else None
            if elements is not None and len(elements) == len(target.elts) and not any(
                    isinstance(t, ast.Starred) for t in target.elts):
                for part, element in zip(target.elts, elements):
                    self._bind(part, element)
            elif self._unpack_comprehension(target, value):
                pass
            else:
                self._bind_all(target, _Var(self._origins(value), self._strings(value)))
        elif isinstance(target, ast.Starred):
            self._bind(target.value, value)
        elif isinstance(target, ast.Attribute) and target.attr == "columns" and isinstance(target.value, ast.Name):
            self._lookup(target.value.id).columns = None  # renamed columns: the target may be anywhere now

    def _bind_name(self, name: str, value: ast.expr) -> None:
        origins = self._origins(value)
        constant = value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else None
        statistic = self._statistic(value) if not _files(origins) else None
        columns, target = self._columns(value), self._target(value)
        literal = self._elements(value) if isinstance(value, (ast.List, ast.Tuple)) else None
        mapping = ({k.value: v for k, v in zip(value.keys, value.values) if isinstance(k, ast.Constant)}
                   if isinstance(value, ast.Dict) else None)
        self._set(name, _Var(origins, self._strings(value), constant, statistic, columns, target, literal, mapping))

    def _bind_all(self, target: ast.expr, var: _Var) -> None:
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                self._set(node.id, _Var(var.origins, var.strings))

    def _unpack_comprehension(self, target: ast.Tuple | ast.List, value: ast.expr) -> bool:
        """``train, valid, test = [pd.read_csv(f"./input/{n}.csv") for n in ("train", "valid", "test")]``."""
        if not isinstance(value, (ast.ListComp, ast.GeneratorExp)) or len(value.generators) != 1:
            return False
        generator = value.generators[0]
        elements = self._elements(generator.iter)
        if (elements is None or len(elements) != len(target.elts) or generator.ifs
                or not isinstance(generator.target, ast.Name)):
            return False
        for part, element in zip(target.elts, elements):
            self.scopes.append({generator.target.id: self._var(element)})
            var = _Var(self._origins(value.elt), self._strings(value.elt))
            self.scopes.pop()
            self._bind_all(part, var)
        return True

    def _var(self, node: ast.expr) -> _Var:
        constant = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None
        return _Var(self._origins(node), self._strings(node), constant)

    # what an expression is made of

    def _origins(self, node: ast.AST | None) -> Origins:
        """The input files (and parameter marks) whose rows ``node``'s value is built from."""
        if node is None or isinstance(node, (ast.Constant, ast.JoinedStr, ast.Lambda)):
            return frozenset()
        if isinstance(node, ast.Name):
            return self._lookup(node.id).origins
        if isinstance(node, ast.Attribute):
            return frozenset() if node.attr in _METADATA else self._origins(node.value)
        if isinstance(node, ast.Subscript):
            base = self._origins(node.value)
            # Rows picked out of train+test (`full[:n_train]`) cannot be told apart here: no claim either way.
            return frozenset() if _mixed(base) and self._picks_rows(node) else base
        if isinstance(node, ast.Call):
            return self._call_origins(node)
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            found: set = set()
            self._comprehend(node.generators, lambda: found.update(*(self._origins(p) for p in parts)))
            return frozenset(found)
        if isinstance(node, ast.IfExp):
            return self._origins(node.body) | self._origins(node.orelse)
        if isinstance(node, ast.NamedExpr):
            return self._origins(node.value)
        found = set()
        for child in ast.iter_child_nodes(node):
            found |= self._origins(child)
        return frozenset(found)

    def _call_origins(self, call: ast.Call) -> Origins:
        func = call.func
        name = _call_name(call)
        if self._reads(call):
            if isinstance(func, ast.Name) and func.id in self.loaders:
                # A local helper that reads files: frames passed in keep their origins, else the path names one.
                passed = frozenset().union(*(self._origins(a) for a in call.args),
                                           *(self._origins(k.value) for k in call.keywords))
                if _files(passed):
                    return passed
            origin = self._read_origin(call)
            return frozenset({origin}) if origin else frozenset()
        if isinstance(func, ast.Name) and (name in _NO_DATA_CALLS or name.endswith(("_score", "_error", "_loss"))):
            return frozenset()
        if _is_logging(call):
            return frozenset()
        arguments = frozenset().union(*(self._origins(a) for a in call.args),
                                      *(self._origins(k.value) for k in call.keywords if k.arg not in _SIDE_KEYWORDS))
        if isinstance(func, ast.Attribute):
            if name.endswith(("_score", "_error", "_loss")) or name in _NO_DATA_CALLS - {"format"}:
                return frozenset()
            if name in _STATISTICS and not _rowwise(call):
                return frozenset()
            receiver = self._origins(func.value)
            if name in _APPLIES:
                return arguments or receiver
            if name in _ROW_PICKERS and _mixed(receiver):
                return frozenset()
            return receiver | arguments
        return self._origins(func) | arguments

    def _picks_rows(self, node: ast.Subscript) -> bool:
        if isinstance(node.value, ast.Attribute) and node.value.attr in ("iloc", "loc"):
            rows = node.slice.elts[0] if isinstance(node.slice, ast.Tuple) and node.slice.elts else node.slice
            return not (isinstance(rows, ast.Slice) and rows.lower is None and rows.upper is None)
        return _is_row_selector(node.slice)

    def _reads(self, call: ast.Call) -> bool:
        name = _call_name(call)
        if isinstance(call.func, ast.Name) and name in self.loaders:
            return True
        return name in _READERS or name.startswith("read_")

    def _read_origin(self, call: ast.Call) -> str | None:
        """The file a read call opens, when its path resolves to one of train/valid/test."""
        path = call.args[0] if call.args else _keyword(call, *_PATH_KEYWORDS)
        if isinstance(call.func, ast.Name) and call.func.id in self.loaders:
            strings = [s for a in call.args for s in self._strings(a)]
            strings += [s for k in call.keywords for s in self._strings(k.value)]
        else:
            strings = list(self._strings(path)) if path is not None else []
        joined = "".join(strings).replace("\\", "/").split("/")[-1]
        if _kind(joined):
            return joined if "." in joined else f"{_kind(joined)}.csv"
        for text in reversed(strings):
            part = text.replace("\\", "/").rstrip("/").split("/")[-1]
            if _kind(part):
                return part if "." in part.strip(".") else f"{_kind(part)}.csv"
        return None

    def _strings(self, node: ast.AST | None) -> tuple:
        """String constants ``node`` is built from, in source order, through names, f-strings and dict literals."""
        if node is None:
            return ()
        if isinstance(node, ast.Constant):
            return (node.value,) if isinstance(node.value, str) else ()
        if isinstance(node, ast.Name):
            return self._lookup(node.id).strings
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            mapping = self._lookup(node.value.id).mapping
            if mapping is not None:
                value = mapping.get(self._constant(node.slice))
                return self._strings(value) if value is not None else ()
        if isinstance(node, (ast.expr_context, ast.Lambda)):
            return ()
        found: tuple = ()
        for child in ast.iter_child_nodes(node):
            found += self._strings(child)
        return found[:64]

    def _comprehend(self, generators: list[ast.comprehension], body) -> None:
        """Run ``body`` with each generator's target bound: once per element of a literal, else to the union."""
        if not generators:
            body()
            return
        first, rest = generators[0], generators[1:]
        elements = self._elements(first.iter)
        if elements is not None and isinstance(first.target, ast.Name) and len(elements) <= 12:
            for element in elements:
                self.scopes.append({first.target.id: self._var(element)})
                self._comprehend(rest, body)
                self.scopes.pop()
            return
        var = _Var(self._origins(first.iter), self._strings(first.iter))
        self.scopes.append({n.id: var for n in ast.walk(first.target) if isinstance(n, ast.Name)})
        self._comprehend(rest, body)
        self.scopes.pop()

    # rule 1 and 3: fits on valid/test rows, alone or concatenated with train

    def _scan(self, node: ast.AST) -> None:
        """Check every call in ``node`` (not entering nested function or class bodies, read on their own)."""
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            for generator in node.generators:
                self._scan(generator.iter)
            parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            parts += [c for g in node.generators for c in g.ifs]
            self._comprehend(node.generators, lambda: [self._scan(p) for p in parts])
            return
        if isinstance(node, ast.Call):
            self._check_call(node)
        for child in ast.iter_child_nodes(node):
            self._scan(child)

    def _check_call(self, call: ast.Call) -> None:
        func, name = call.func, _call_name(call)
        self._early_stopping_on_valid(call)
        if isinstance(func, ast.Attribute) and name in _FITS:
            x = _argument(call, 0, "X", "x")
            if x is not None:
                self._fit(call, x, _short(func), name)
                self._target_in_features(call, x, _argument(call, 1, "y"), _short(func))
        elif name in _CROSS_VALIDATION:
            x = _argument(call, 1, "X")
            if x is not None:
                self._fit(call, x, name, name)
                self._target_in_features(call, x, _argument(call, 2, "y"), name)
        elif (isinstance(func, ast.Attribute) and name in ("train", "cv") and isinstance(func.value, ast.Name)
              and func.value.id in _BOOSTING_MODULES):
            data = _argument(call, 1, "train_set", "dtrain")
            if data is not None:
                self._fit(call, data, _short(func), name)
        elif isinstance(func, ast.Name) and name in self.fitters:
            self._fit_through(call, name)

    def _early_stopping_on_valid(self, call: ast.Call) -> None:
        """Early stopping watched on valid.csv picks the model on the very rows the framework scores it on."""
        watched = _keyword(call, "eval_set", "valid_sets", "evals")
        if watched is None or not self.early_stopping:
            return
        held = [h for h in _held(self._origins(watched)) if _kind(h) == "valid"]
        if held:
            self._report(call.lineno, f"early:{_short(call.func)}",
                         f"`{_short(call.func)}` stops early on `{_short(watched, 40)}` (derived from {_and(held)}): "
                         f"the validation rows then choose the model they score; stop early on held-out training "
                         f"rows instead")

    def _fit(self, call: ast.Call, x: ast.expr, callee: str, method: str, others: Origins = frozenset(),
             through: str = "") -> None:
        origins = self._origins(x) | others
        if self.function:
            for mark in (o for o in origins if o.startswith(f"@{self.function}:")):
                self.fitters.setdefault(self.function, []).append(
                    _Fitter(int(mark.rsplit(":", 1)[1]), _files(origins), through or callee, call.lineno))
        held = _held(origins)
        if not held:
            return
        if method == "cross_val_predict" and all(_kind(h) == "valid" for h in held):
            return  # out-of-fold predictions on validation rows are honest validation predictions
        if (method not in _CROSS_VALIDATION and ast.dump(x) in self.out_of_fold
                and all(_kind(h) == "valid" for h in held)):
            return  # the refit of a stacker whose validation predictions come out of fold from cross_val_predict
        subject = _short(x, 40)
        how = ("fit on training rows only, then transform" if method == "fit_transform"
               else "resample training rows only" if method == "fit_resample" else "fit on training rows only")
        if any(_kind(h) == "valid" for h in held):
            how += " (valid.csv is only for measuring)"
        if _has_train(origins):
            trains = sorted(o for o in _files(origins) if _kind(o) == "train")
            what = f"`{subject}`, which combines rows of {_and(trains + held)}"
        else:
            what = f"`{subject}` (derived from {_and(held)})"
        where = f"`{callee}`{through} is applied to {what}"
        self._report(call.lineno, f"fit:{callee}:{subject}", f"{where}: {how}")

    def _fit_through(self, call: ast.Call, function: str) -> None:
        """A call of a local function that fits on one of its parameters."""
        params = self.functions[function]
        for fitter in self.fitters[function]:
            if fitter.index >= len(params):
                continue
            argument = _argument(call, fitter.index, params[fitter.index])
            if argument is not None:
                through = f" (inside `{function}`, line {fitter.line})"
                self._fit(call, argument, fitter.callee, "fit", fitter.others, through)

    # rule 2: statistics of valid/test rows used on training rows

    def _statistic(self, node: ast.AST) -> _Statistic | None:
        """The first statistic of valid/test rows in ``node``, inline or held by a name (print and f-strings aside)."""
        if isinstance(node, (ast.JoinedStr, ast.Lambda)) or (isinstance(node, ast.Call) and (
                _is_logging(node) or (isinstance(node.func, ast.Name) and node.func.id == "print"))):
            return None
        if isinstance(node, ast.Name):
            found = self._lookup(node.id).statistic
            return replace(found, holder=node.id) if found else None
        if isinstance(node, ast.Call) and _call_name(node) in _STATISTICS and not _rowwise(node):
            func = node.func
            data = (node.args[0] if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                    and func.value.id in _NUMERIC_MODULES and node.args else
                    func.value if isinstance(func, ast.Attribute) else None)
            if data is not None:
                origins = self._origins(data)
                if _held(origins):
                    return _Statistic(node.lineno, _short(node, 40), _short(data, 32), origins)
        for child in ast.iter_child_nodes(node):
            found = self._statistic(child)
            if found:
                return found
        return None

    def _statistic_use(self, node: ast.stmt) -> None:
        """Report a statement that puts a valid/test statistic into training rows (`X_train.fillna(X_test.mean())`)."""
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            value, targets = node.value, []
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and node.value is not None:
            value = node.value
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        else:
            return
        statistic = self._statistic(value)
        if statistic is None:
            return
        touched = self._origins(value)
        for target in targets:
            if isinstance(target, (ast.Subscript, ast.Attribute)):
                touched |= self._origins(target.value)
            elif isinstance(node, ast.AugAssign):
                touched |= self._origins(target)
        if not _has_train(touched):
            return
        held = _held(statistic.origins)
        source = (f"`{statistic.data}`, which includes rows of {_and(held)}," if _has_train(statistic.origins)
                  else f"`{statistic.data}` (derived from {_and(held)})")
        what = (f"`{statistic.holder}` (= `{statistic.text}`, line {statistic.line})" if statistic.holder
                else f"`{statistic.text}`")
        self._report(node.lineno, f"stat:{statistic.text}",
                     f"{what} is a statistic of {source} and is used on training rows: "
                     f"compute statistics on training rows only")

    # rule 4: the target column left among the features

    def _columns(self, node: ast.expr) -> _Columns | None:
        if isinstance(node, ast.Name):
            return self._lookup(node.id).columns
        if isinstance(node, ast.Call):
            if self._reads(node):
                return _Columns((node.lineno, node.col_offset), False, frozenset())
            if not isinstance(node.func, ast.Attribute):
                return None
            name, base = node.func.attr, self._columns(node.func.value)
            if base is None or _keyword(node, "inplace") is not None:
                return None
            if name == "dropna" and _keyword(node, "axis") is not None:
                return None
            if name in _COLUMNS_KEPT:
                return base
            if name == "drop":
                labels = _keyword(node, "columns")
                if labels is None and node.args and _rowwise(node):
                    labels = node.args[0]
                return self._without(base, _constant_labels(labels, self._constant))
            return None
        if isinstance(node, ast.Subscript):
            base = self._columns(node.value)
            if base is None or isinstance(node.value, ast.Attribute):
                return None
            if _is_row_selector(node.slice):
                return base
            if isinstance(node.slice, ast.List):
                labels = _constant_labels(node.slice, self._constant)
                return _Columns(base.group, True, labels) if labels is not None else None
        return None

    @staticmethod
    def _without(base: _Columns, labels: frozenset | None) -> _Columns | None:
        if labels is None:
            return None
        return _Columns(base.group, True, base.labels - labels) if base.only else \
            _Columns(base.group, False, base.labels | labels)

    def _target(self, node: ast.expr) -> tuple | None:
        """(group, label) when ``node`` is one column of a tracked frame; label None when it is not a constant."""
        if isinstance(node, ast.Name):
            return self._lookup(node.id).target
        if isinstance(node, ast.Attribute):
            if node.attr == "values":
                return self._target(node.value)
            base = self._columns(node.value) if isinstance(node.value, ast.Name) else None
            return (base.group, node.attr) if base and node.attr not in _FRAME_ATTRIBUTES else None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func = node.func
            if func.attr == "pop" and node.args and isinstance(func.value, ast.Name):
                base = self._lookup(func.value.id).columns
                return (base.group, self._constant(node.args[0])) if base else None
            if func.attr in _TARGET_CHAIN:
                return self._target(func.value)
            if isinstance(func.value, ast.Name) and func.value.id in _NUMERIC_MODULES and len(node.args) == 1:
                return self._target(node.args[0])  # np.log1p(train["price"])
            return None
        if isinstance(node, ast.Subscript):
            if isinstance(node.value, ast.Attribute) and node.value.attr == "iloc":
                base = self._columns(node.value.value)
                rows_cols = node.slice.elts if isinstance(node.slice, ast.Tuple) else []
                if base and len(rows_cols) == 2 and isinstance(rows_cols[1], (ast.Constant, ast.UnaryOp)):
                    return base.group, None
                return None
            base = self._columns(node.value)
            if base is None:
                return None
            key = node.slice
            if isinstance(key, ast.List) and len(key.elts) == 1:
                key = key.elts[0]
            if isinstance(key, (ast.Constant, ast.Name)) and not _is_row_selector(key):
                return base.group, self._constant(key)
        return None

    def _target_in_features(self, call: ast.Call, x: ast.expr, y: ast.expr | None, callee: str) -> None:
        if y is None:
            return
        columns, target = self._columns(x), self._target(y)
        if columns is None or target is None or columns.group != target[0]:
            return
        label = target[1]
        if columns.only:
            inside = label is not None and label in columns.labels
        else:
            inside = label not in columns.labels if label is not None else not columns.labels
        if inside:
            column = f"column {label!r} (`{_short(y, 40)}`)" if label is not None else f"`{_short(y, 40)}`"
            self._report(call.lineno, f"target:{callee}",
                         f"`{callee}` gets features `{_short(x, 40)}` that still hold the target {column}: "
                         f"drop the target column from the features")

    def _mutations(self, node: ast.stmt) -> None:
        """Follow in-place changes to the columns of tracked frames: pop, drop(inplace=True), local helpers."""
        for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
            func = call.func
            if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                    and self._lookup(func.value.id).columns):
                frame = func.value.id
                if func.attr == "pop":
                    self._drop_columns(frame, _constant_labels(call.args[0], self._constant) if call.args else None)
                elif func.attr == "drop" and _keyword(call, "inplace") is not None:
                    labels = _keyword(call, "columns")
                    if labels is None and call.args and _rowwise(call):
                        labels = call.args[0]
                    self._drop_columns(frame, _constant_labels(labels, self._constant))
                elif _keyword(call, "inplace") is not None and func.attr not in _COLUMNS_KEPT - {"dropna"}:
                    self._lookup(frame).columns = None
            elif isinstance(func, ast.Name) and func.id in self.functions:
                for argument in call.args:
                    if isinstance(argument, ast.Name):
                        self._lookup(argument.id).columns = None  # a helper may drop columns: no claim

    def _drop_columns(self, frame: str, labels: frozenset | None) -> None:
        var = self._lookup(frame)
        if var.columns is not None:
            var.columns = self._without(var.columns, labels)


def _is_row_selector(node: ast.expr) -> bool:
    """A subscript that picks rows: a slice, a comparison or a boolean mask call (`train[train.y.notna()]`)."""
    if isinstance(node, (ast.Slice, ast.Compare, ast.BoolOp)):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Invert, ast.Not)):
        return True
    return isinstance(node, ast.Call) and _call_name(node) in _MASKS


def _is_logging(call: ast.Call) -> bool:
    func = call.func
    return isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in _LOGGERS
