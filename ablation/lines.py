"""Line-level text helpers shared by the splitter and splice: lines numbered the way `ast` numbers them, and
re-indenting a snippet without touching the inside of its multi-line strings."""

from __future__ import annotations

import re
import tokenize

_EOL = re.compile(r"\r\n|\r|\n")
_TRAILING_EOL = re.compile(r"(\r\n|\r|\n)\Z")


def split_lines(text: str) -> list[str]:
    """Lines with their endings kept; like `ast`, a lone \\r also ends a line (str.splitlines splits on more)."""
    lines, pos = [], 0
    for match in _EOL.finditer(text):
        lines.append(text[pos : match.end()])
        pos = match.end()
    if pos < len(text):
        lines.append(text[pos:])
    return lines


def eol_of(line: str) -> str:
    """The line ending at the end of `line`, "" for a last line without one."""
    match = _TRAILING_EOL.search(line)
    return match.group() if match else ""


def strip_eol(line: str) -> str:
    return line[: len(line) - len(eol_of(line))]


def leading_ws(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t\f"))]


def is_blank_or_comment(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def span_text(lines: list[str], start: int, end: int) -> str:
    """Text of 1-based lines start..end, without the last line's ending."""
    return strip_eol("".join(lines[start - 1 : end]))


def reindent(snippet: str, indent: str) -> str:
    """Move a snippet to `indent`: its first code line's indentation is replaced on every line that has it.

    Lines inside multi-line strings, blank lines and lines indented less than that base are kept as they are, so
    a snippet already at `indent` comes back byte-identical.
    """
    lines = split_lines(snippet)
    protected = _string_inner_lines(lines)
    candidates = [i for i, line in enumerate(lines) if i not in protected and line.strip()]
    code = [i for i in candidates if not lines[i].lstrip().startswith("#")]
    if not candidates:
        return snippet
    base = leading_ws(lines[(code or candidates)[0]])
    out = []
    for i, line in enumerate(lines):
        if i in protected or not line.strip() or not line.startswith(base):
            out.append(line)
        else:
            out.append(indent + line[len(base) :])
    return "".join(out)


def _string_inner_lines(lines: list[str]) -> set[int]:
    """0-based indices of lines that begin inside a multi-line string literal (their whitespace is data)."""
    inner: set[int] = set()
    opened: list[int] = []
    readline = iter(lines).__next__
    try:
        for tok in tokenize.generate_tokens(readline):
            name = tokenize.tok_name[tok.type]
            if name == "FSTRING_START":  # Python 3.12+ splits f-strings into several tokens
                opened.append(tok.start[0])
            elif name == "FSTRING_END" and opened:
                inner.update(range(opened.pop(), tok.end[0]))
            elif tok.type == tokenize.STRING and tok.end[0] > tok.start[0]:
                inner.update(range(tok.start[0], tok.end[0]))
    except (tokenize.TokenError, SyntaxError, StopIteration):
        pass  # a fragment that does not tokenize keeps what was found so far; splice re-parses the result anyway
    return inner
