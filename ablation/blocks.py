"""Split a solution script into code blocks, splice a rewritten block back by its exact source span, and mark block
boundaries with progress lines: the ground that ablation and refinement stand on."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from ablation.classify import StatementKinds
from ablation.lines import eol_of, is_blank_or_comment, leading_ws, reindent, span_text, split_lines
from ablation.names import bound_names, loaded_names

KINDS = ("imports", "load_data", "preprocess", "model", "train", "predict", "other")
PROGRESS_TAG = "[mlestar-progress]"

MARKER = re.compile(r"^\s*#\s*\[block:\s*([A-Za-z_][\w-]*)\s*\]")  # `# [block: preprocess]` on a line of its own
_MARKER_ALIASES = {
    "import": "imports", "load": "load_data", "data": "load_data", "loading": "load_data",
    "features": "preprocess", "feature_engineering": "preprocess", "preprocessing": "preprocess",
    "models": "model", "training": "train", "fit": "train", "eval": "train", "evaluate": "train",
    "validation": "train", "prediction": "predict", "inference": "predict", "submission": "predict",
}
_PROGRESS_LINE = re.compile(re.escape(PROGRESS_TAG) + r" (\w+)")


class SpliceError(ValueError):
    """A block could not be spliced: it is stale (the script changed under it) or the result is not valid Python."""


@dataclass(frozen=True)
class Block:
    """A run of whole statements at one indentation level; `source` is lines start..end (1-based, inclusive)."""

    index: int
    kind: str
    start: int
    end: int
    source: str
    indent: str
    defines: frozenset[str]
    uses: frozenset[str]
    ordinal: int = 0  # position among blocks of the same kind; with kind it survives a rewrite that shifts lines

    @property
    def key(self) -> str:
        return f"{self.kind}#{self.ordinal}"


@dataclass
class _Unit:
    """Statements that share lines (`a = 1; b = 2`), with the comment lines directly above them."""

    stmts: list[ast.stmt]
    start: int
    end: int
    marker: str | None = None


@dataclass
class _Group:
    kind: str
    units: list[_Unit] = field(default_factory=list)
    marked: bool = False


def split_blocks(code: str) -> list[Block]:
    """Split a script into blocks; raises SyntaxError when `code` does not parse.

    Works on the top-level statements, but descends into the body of `if __name__ == "__main__":` or of the
    function that guard (or a top-level call) runs, such as `def main():`. The header of that function or guard
    and the statement that calls it belong to no block, so that removing a block can never remove the entry
    point. A `# [block: kind]` comment starts a block of that kind that runs until the next marker; unmarked
    statements are classified by what they do and consecutive statements of one kind are merged.
    """
    tree = ast.parse(code)
    lines = split_lines(code)
    kinds = StatementKinds(tree)
    groups: list[_Group] = []
    after_model = False
    for stmts, floor in _segments(tree, lines):
        segment: list[_Group] = []
        pending: list[_Unit] = []  # docstrings wait for the statement they describe
        for unit in _units(stmts, floor, lines):
            if unit.marker:
                segment.append(_Group(unit.marker, [*pending, unit], marked=True))
            elif segment and segment[-1].marked:
                segment[-1].units += [*pending, unit]
            else:
                kind = kinds.kind(unit.stmts, after_model)
                if kind is None:
                    pending.append(unit)
                    continue
                if segment and segment[-1].kind == kind:
                    segment[-1].units += [*pending, unit]
                else:
                    segment.append(_Group(kind, [*pending, unit]))
            pending = []
            after_model = after_model or segment[-1].kind in ("model", "train")
        if pending:
            if segment:
                segment[-1].units += pending
            else:
                segment.append(_Group("other", pending))
        groups += segment
    return _blocks(groups, lines)


def splice(code: str, block: Block, new_source: str) -> str:
    """Replace the block's lines with `new_source`, moved to the block's indentation; the rest stays byte-identical.

    When the block opened with a `# [block: kind]` marker and `new_source` has none, the marker is kept above the
    new code, so the block keeps its kind and key. An empty `new_source` deletes the lines. Raises SpliceError when `block.source` no longer matches those lines
    of `code` or when the result does not parse.
    """
    lines = split_lines(code)
    _check_fresh(lines, block)
    body = _keep_marker(block, new_source.rstrip("\r\n"))
    replacement = reindent(body, block.indent) + eol_of(lines[block.end - 1]) if body.strip() else ""
    result = "".join(lines[: block.start - 1]) + replacement + "".join(lines[block.end :])
    try:
        ast.parse(result)
    except (SyntaxError, ValueError) as err:
        where = f" (line {err.lineno})" if getattr(err, "lineno", None) else ""
        raise SpliceError(
            f"splicing new code into {block.key} (lines {block.start}-{block.end}) gives invalid Python: "
            f"{getattr(err, 'msg', err)}{where}"
        ) from None
    return result


def instrument(code: str, blocks: list[Block] | None = None) -> str:
    """Add `print("[mlestar-progress] <kind>", flush=True)` after each block, at the block's indentation.

    A failing run's stdout then says which stages it got through (see `reached_stages`).
    """
    blocks = split_blocks(code) if blocks is None else blocks
    lines = split_lines(code)
    for block in blocks:
        _check_fresh(lines, block)
    newline = next((eol_of(line) for line in lines if eol_of(line)), "\n")
    result = _insert_progress(lines, blocks, newline)
    try:
        ast.parse(result)
    except SyntaxError:
        # a print can be illegal at a block boundary (before a later `from __future__` import): add the
        # prints one at a time and leave out those that break the script
        kept: list[Block] = []
        for block in blocks:
            trial = _insert_progress(lines, [*kept, block], newline)
            try:
                ast.parse(trial)
            except SyntaxError:
                continue
            kept.append(block)
            result = trial
        if not kept:
            result = code
    return result


def reached_stages(stdout: str) -> list[str]:
    """The block kinds an instrumented script reported finishing, in order of first report."""
    stages: list[str] = []
    for kind in _PROGRESS_LINE.findall(stdout):
        if kind not in stages:
            stages.append(kind)
    return stages


def _insert_progress(lines: list[str], blocks: list[Block], newline: str) -> str:
    out = list(lines)
    for block in sorted(blocks, key=lambda b: b.end, reverse=True):
        if not eol_of(out[block.end - 1]):
            out[block.end - 1] += newline
        out.insert(block.end, f'{block.indent}print("{PROGRESS_TAG} {block.kind}", flush=True){newline}')
    return "".join(out)


def _keep_marker(block: Block, body: str) -> str:
    """Put the block's marker line above new code that has none, so the block keeps its kind and key."""
    marker = next((line.strip() for line in block.source.split("\n") if MARKER.match(line)), None)
    new_lines = body.split("\n")
    if marker is None or not body.strip() or any(MARKER.match(line) for line in new_lines):
        return body
    first = next(line for line in new_lines if line.strip())
    return f"{leading_ws(first)}{marker}\n{body}"


def _check_fresh(lines: list[str], block: Block) -> None:
    if not (1 <= block.start <= block.end <= len(lines)) or span_text(lines, block.start, block.end) != block.source:
        raise SpliceError(
            f"block {block.key} is stale: lines {block.start}-{block.end} of the script no longer hold its source "
            f"(split the current script again)"
        )


def _blocks(groups: list[_Group], lines: list[str]) -> list[Block]:
    blocks: list[Block] = []
    seen: dict[str, int] = {}
    for index, group in enumerate(groups):
        stmts = [s for unit in group.units for s in unit.stmts]
        start, end = group.units[0].start, group.units[-1].end
        ordinal = seen.get(group.kind, 0)
        seen[group.kind] = ordinal + 1
        blocks.append(
            Block(
                index=index,
                kind=group.kind,
                start=start,
                end=end,
                source=span_text(lines, start, end),
                indent=leading_ws(lines[_first_line(stmts[0]) - 1]),
                defines=frozenset(bound_names(stmts)),
                uses=frozenset(loaded_names(stmts)),
                ordinal=ordinal,
            )
        )
    return blocks


def _units(stmts: list[ast.stmt], floor: int, lines: list[str]) -> list[_Unit]:
    """Group statements that share a line and attach the comments directly above each group.

    Blank lines above the first of those comments stay outside, so blocks keep their separation when spliced.
    """
    units: list[_Unit] = []
    previous_end = floor
    for stmt in stmts:
        first = _first_line(stmt)
        if units and first <= units[-1].end:
            units[-1].stmts.append(stmt)
            units[-1].end = max(units[-1].end, stmt.end_lineno or first)
            previous_end = units[-1].end
            continue
        top = first
        while top - 1 > previous_end and is_blank_or_comment(lines[top - 2]):
            top -= 1
        while top < first and not lines[top - 1].strip():
            top += 1
        markers = [m.group(1) for m in map(MARKER.match, lines[top - 1 : first - 1]) if m]
        marker = _marker_kind(markers[-1]) if markers else None
        units.append(_Unit([stmt], top, stmt.end_lineno or first, marker))
        previous_end = units[-1].end
    return units


def _marker_kind(name: str) -> str:
    name = name.lower().replace("-", "_")
    name = _MARKER_ALIASES.get(name, name)
    return name if name in KINDS else "other"


def _segments(tree: ast.Module, lines: list[str]) -> list[tuple[list[ast.stmt], int]]:
    """Runs of sibling statements to split, each with the line above which its comments cannot reach."""
    entry = _entry(tree, lines)
    if entry is None:
        return [(tree.body, 0)] if tree.body else []
    container, scaffold = entry
    segments: list[tuple[list[ast.stmt], int]] = []
    run: list[ast.stmt] = []
    floor = 0
    for stmt in tree.body:
        if stmt is container or any(stmt is s for s in scaffold):
            if run:
                segments.append((run, floor))
            run = []
            if stmt is container:
                segments.append((container.body, container.lineno))
            floor = stmt.end_lineno or stmt.lineno
        else:
            run.append(stmt)
    if run:
        segments.append((run, floor))
    return segments


def _entry(tree: ast.Module, lines: list[str]) -> tuple[ast.stmt, list[ast.stmt]] | None:
    """Where the real work sits: (the statement whose body to split, the statements that only call it)."""
    functions = {s.name: s for s in tree.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}
    guard = next((s for s in reversed(tree.body) if _is_main_guard(s)), None)
    callers: dict[str, ast.stmt] = {}
    for stmt in tree.body:
        for inner in stmt.body if stmt is guard else [stmt]:
            name = _called_function(inner, functions)
            if name:
                callers.setdefault(name, stmt)
    name = None
    if guard is not None and len(guard.body) == 1:
        name = _called_function(guard.body[0], functions)
    if name is None and "main" in callers:
        name = "main"
    if name is not None and _body_on_own_lines(functions[name], lines):
        return functions[name], [callers[name]]
    if guard is not None and _body_on_own_lines(guard, lines):
        return guard, [guard]
    return None


def _is_main_guard(stmt: ast.stmt) -> bool:
    if not isinstance(stmt, ast.If) or not isinstance(stmt.test, ast.Compare):
        return False
    test = stmt.test
    if len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    has_name = any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
    has_main = any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)
    return has_name and has_main


def _called_function(stmt: ast.stmt, functions: dict[str, ast.stmt]) -> str | None:
    """Name of a script function this statement exists to call: `main()`, `sys.exit(main())`, `asyncio.run(main())`."""
    if isinstance(stmt, ast.Expr):
        value = stmt.value
    elif isinstance(stmt, ast.Raise):
        value = stmt.exc
    else:
        return None
    for node in ast.walk(value) if value is not None else []:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in functions:
            return node.func.id
    return None


def _body_on_own_lines(node: ast.stmt, lines: list[str]) -> bool:
    """Whether the body starts on a line of its own (not `def main(): run()` or `if c: x = 1`)."""
    first = node.body[0]
    line = _first_line(first)
    if line <= node.lineno:
        return False
    # after a multi-line header, `a, b): run()` starts on a later line but still shares it with the header
    return _starts_line(first, lines)


def _starts_line(stmt: ast.stmt, lines: list[str]) -> bool:
    if getattr(stmt, "decorator_list", None):
        return True  # a decorator always opens its own line
    return not lines[stmt.lineno - 1].encode()[: stmt.col_offset].strip()  # col_offset counts UTF-8 bytes


def _first_line(stmt: ast.stmt) -> int:
    """First line of a statement, counting its decorators."""
    decorators = getattr(stmt, "decorator_list", None) or []
    return min([stmt.lineno, *(d.lineno for d in decorators)])
