"""Split a solution script into code blocks, splice a rewritten block back by its exact source span, and mark block
boundaries with progress lines: the ground that ablation and refinement stand on."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from ablation.classify import StatementKinds
from ablation.entry import first_line, segments
from ablation.lines import eol_of, is_blank_or_comment, leading_ws, reindent, span_text, split_lines
from ablation.names import bound_names, loaded_names
from core.pyast import parse as parse_python

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
    """A run of whole statements at one indentation level, with the comments directly above them.

    `source` is lines start..end (1-based, inclusive) without the last line's ending; `indent` is the leading
    whitespace of its first statement; `defines` the names it binds at its own level; `uses` the names it reads,
    counting the free names read by the functions it defines.
    """

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
    tree = parse_python(code)
    lines = split_lines(code)
    kinds = StatementKinds(tree)
    groups: list[_Group] = []
    after_model = False
    for stmts, floor in segments(tree, lines):
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
    new code, so the block keeps its kind and key. An empty `new_source` deletes the lines. Raises SpliceError when
    `block.source` no longer matches those lines of `code` (a stale block) or when the result does not parse.
    """
    lines = split_lines(code)
    _check_fresh(lines, block)
    body = _keep_marker(block, new_source.rstrip("\r\n"))
    replacement = reindent(body, block.indent) + eol_of(lines[block.end - 1]) if body.strip() else ""
    result = "".join(lines[: block.start - 1]) + replacement + "".join(lines[block.end :])
    try:
        parse_python(result)
    except (SyntaxError, ValueError) as err:
        where = f" (line {err.lineno})" if getattr(err, "lineno", None) else ""
        raise SpliceError(
            f"splicing new code into {block.key} (lines {block.start}-{block.end}) gives invalid Python: "
            f"{getattr(err, 'msg', err)}{where}"
        ) from None
    return result


def instrument(code: str, blocks: list[Block] | None = None) -> str:
    """Add `print("[mlestar-progress] <kind>", flush=True)` after each block, at the block's indentation.

    A failing run's stdout then says which stages it got through (see `reached_stages`). Raises SpliceError when
    a given block is stale.
    """
    blocks = split_blocks(code) if blocks is None else blocks
    lines = split_lines(code)
    for block in blocks:
        _check_fresh(lines, block)
    newline = next((eol_of(line) for line in lines if eol_of(line)), "\n")
    result = _insert_progress(lines, blocks, newline)
    try:
        parse_python(result)
    except SyntaxError:
        # a print can be illegal at a block boundary (before a later `from __future__` import): add the
        # prints one at a time and leave out those that break the script
        kept: list[Block] = []
        for block in blocks:
            trial = _insert_progress(lines, [*kept, block], newline)
            try:
                parse_python(trial)
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
                indent=leading_ws(lines[first_line(stmts[0]) - 1]),
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
        first = first_line(stmt)
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
