"""Reading a language model's reply: the code in it (fenced or bare, checked with ``ast.parse``), a block that must
replace exactly one span of a script, JSON found inside prose (repaired when it is close), and plan lists. Each
parser returns the value or raises ``ReplyError`` with a message meant for the model's second try."""

from __future__ import annotations

import ast
import json
import re
import textwrap

from ablation import SpliceError, splice, split_blocks
from ablation.names import bound_names
from core.checks import leakage_findings, unused_files
from core.policy import BlockInfo
from core.pyast import parse as parse_python
from plugins.llm.prompting import without_specs

FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:\n[ \t]*```|\Z)", re.DOTALL)
CODE_START = re.compile(r"^\s*(import |from \w|def |class |@|#|[A-Za-z_][\w.\[\]'\"]*\s*(=|\()|if |for |with |"
                        r"try:|while |print\(|\"\"\"|''')")
MARKER_LINE = re.compile(r"^[ \t]*(#[ \t]*\[block:[ \t]*\w+[ \t]*\])")
LIST_ITEM = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+(.+)$")


class ReplyError(ValueError):
    """The reply cannot be used; the message says why, in words the model can act on."""


# --- code ---------------------------------------------------------------------------------------------------------

def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, an unterminated last fence included (a reply cut at max_tokens)."""
    return [(m.group(1).lower(), m.group(2)) for m in FENCE.finditer(text)]


def syntax_problem(code: str) -> str | None:
    try:
        parse_python(code)
    except SyntaxError as err:
        line = f" at line {err.lineno}" if err.lineno else ""
        shown = f": {err.text.strip()!r}" if err.text and err.text.strip() else ""
        return f"the code is not valid Python ({err.msg}{line}{shown})"
    except ValueError as err:  # null bytes
        return f"the code is not valid Python ({err})"
    return None


def extract_code(text: str) -> str:
    """The Python in a reply: the longest fenced block that parses; else the bare reply, trimmed of prose lines
    above and below the code. Raises ReplyError naming the syntax error of the best candidate."""
    text = (text or "").replace("\r\n", "\n")
    if not text.strip():
        raise ReplyError("the reply is empty")
    fences = [body for lang, body in fenced_blocks(text) if lang in ("", "python", "py", "python3")]
    candidates = sorted(fences, key=len, reverse=True) if fences else _bare_candidates(text)
    first_problem = None
    for candidate in candidates:
        candidate = candidate.strip("\n")
        if not candidate.strip():
            continue
        problem = syntax_problem(textwrap.dedent(candidate))
        if problem is None:
            return textwrap.dedent(candidate)
        first_problem = first_problem or problem
    if first_problem is None:
        raise ReplyError("the reply holds no Python code")
    cut = "" if not fences or text.rstrip().endswith("```") else " (the reply looks cut off: keep it shorter)"
    raise ReplyError(first_problem + cut)


def _bare_candidates(text: str) -> list[str]:
    """The whole reply, then the reply from its first code-looking line, then that without trailing prose."""
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if CODE_START.match(line)), 0)
    body = lines[start:]
    out = [text, "\n".join(body)]
    for end in range(len(body), 0, -1):  # drop prose lines at the end, one at a time
        tail = body[end - 1]
        if tail.strip() and not tail.startswith((" ", "\t")) and not CODE_START.match(tail) and \
                not tail.rstrip().endswith((")", "]", "}", ":", ",")):
            out.append("\n".join(body[: end - 1]))
    return out


def parse_script(text: str, *, outputs: tuple[str, ...] = ("val_predictions.csv", "submission.csv")) -> str:
    """A whole script that parses and writes the contract's output files."""
    code = extract_code(text)
    missing = [name for name in outputs if name not in code]
    if missing:
        raise ReplyError(f"the script never writes {' or '.join(missing)}; it must write both val_predictions.csv "
                         f"and submission.csv")
    if "Final Validation Performance" not in code:
        raise ReplyError("the script never prints the line 'Final Validation Performance: <score>'")
    return code.rstrip() + "\n"


def parse_leak_free_script(text: str) -> str:
    code = parse_script(text)
    findings = leakage_findings(code)
    if findings:
        found = "; ".join(f.message for f in findings[:3])
        raise ReplyError(f"the script still leaks validation or test data: {found}")
    return code


def parse_script_using(text: str, files: list[str]) -> str:
    code = parse_script(text)
    still = unused_files(code, files)
    if still and len(still) == len(files):
        raise ReplyError(f"the script still never reads {', '.join('./input/' + f for f in still)}")
    return code


# --- a block that replaces one span -------------------------------------------------------------------------------

def parse_block(text: str, code: str, block: BlockInfo) -> str:
    """The new source of ``block`` only: taken from the reply (a whole script is cut down to the part that differs
    from ``code``), its indentation repaired, and checked by splicing it into ``code``."""
    text = (text or "").replace("\r\n", "\n")
    fences = [body for lang, body in fenced_blocks(text) if lang in ("", "python", "py", "python3")]
    candidates = sorted(fences, key=len, reverse=True) if fences else [*_bare_candidates(text)[1:], text]
    try:
        blocks = split_blocks(code)
    except SyntaxError:
        blocks = []
    target = next((b for b in blocks if b.source == block.source), None)
    # names the old block binds that a later block reads: the new one must bind them too
    needed = target.defines & set().union(*(b.uses for b in blocks[blocks.index(target) + 1:])) if target else set()
    problem = None
    for raw in candidates:
        raw = _only_the_block(raw.strip("\n"), without_specs(code), without_specs(block.source))
        if not raw.strip():
            continue
        new = reindented_block(raw)
        if new is None:
            problem = problem or syntax_problem(textwrap.dedent(raw)) or "the block is not valid Python"
            continue
        if _normalised(without_specs(new)) == _normalised(without_specs(block.source)):
            problem = problem or "the block is unchanged; rewrite it to carry out the plan"
            continue
        statements = parse_python(new).body
        if all(isinstance(s, ast.Expr) and isinstance(s.value, (ast.Name, ast.Constant)) for s in statements):
            problem = problem or "the reply holds no code, only a name or a string"
            continue
        missing = sorted(needed - bound_names(statements))
        if missing:
            problem = problem or (f"the new block no longer defines {', '.join(missing[:6])}, which the rest of the "
                                  f"script uses; keep defining them")
            continue
        new = _with_marker(new, block)
        if target is not None:
            try:
                splice(code, target, new)
            except SpliceError as exc:
                problem = problem or f"the block does not fit back into the script: {exc}"
                continue
        return new
    raise ReplyError(problem or "the reply holds no code")


def _with_marker(new: str, block: BlockInfo) -> str:
    """A rewritten block keeps the block's ``# [block: kind]`` marker line, but never a JSON spec on it: the spec
    described the old code (splicing a block without a marker would keep the old marker, spec and all)."""
    new = without_specs(new)
    marker = next((line.strip() for line in block.source.split("\n") if MARKER_LINE.match(line)), None)
    if marker is None or any(MARKER_LINE.match(line) for line in new.split("\n")):
        return new
    return MARKER_LINE.match(marker).group(1) + "\n" + new


def _only_the_block(raw: str, code: str, source: str) -> str:
    """When the reply is the whole script, the lines between the part it shares with the script's start and the
    part it shares with its end (the block's ``source`` sits there in ``code``); otherwise the reply itself."""
    before, _, after = code.partition(source)
    if not _:
        return raw
    reply_lines = raw.split("\n")
    head = [line.rstrip() for line in before.split("\n")[:-1] if line.strip()]
    tail = [line.rstrip() for line in after.split("\n")[1:] if line.strip()]
    if len(head) + len(tail) < 3:
        return raw
    stripped = [line.rstrip() for line in reply_lines]
    # the reply holds the script around the block when it contains most of those lines, in order
    shared_head = _prefix_match(stripped, head)
    shared_tail = _prefix_match(stripped[::-1], tail[::-1])
    if shared_head < max(1, len(head) // 2) and shared_tail < max(1, len(tail) // 2):
        return raw
    start = _index_after(stripped, head[:shared_head])
    end = len(stripped) - _index_after(stripped[::-1], tail[::-1][:shared_tail])
    middle = "\n".join(reply_lines[start:end]).strip("\n")
    return middle or raw


def _prefix_match(lines: list[str], wanted: list[str]) -> int:
    """How many of ``wanted`` (non-blank lines) appear in order at the start of ``lines`` (blank lines skipped)."""
    i = n = 0
    for line in lines:
        if not line.strip():
            continue
        if n < len(wanted) and line == wanted[n]:
            n += 1
            i += 1
            continue
        break
    return n


def _index_after(lines: list[str], matched: list[str]) -> int:
    """The index just past the last of ``matched`` lines found in order at the start of ``lines``."""
    n = 0
    for i, line in enumerate(lines):
        if n == len(matched):
            return i
        if line.strip():
            n += 1
    return len(lines)


def reindented_block(raw: str) -> str | None:
    """The snippet at column 0, or None: dedented as a whole, or, when a model put the first line at column 0 and
    the rest one level deeper (or the reverse), each line moved by the amount that makes the snippet parse."""
    candidates = [textwrap.dedent(raw)]
    lines = raw.split("\n")
    if len(lines) > 1:
        first, rest = lines[0].strip(), textwrap.dedent("\n".join(lines[1:]))
        if not lines[0].rstrip().endswith(":"):
            candidates.append(first + "\n" + rest)
        candidates.append(textwrap.dedent("\n".join(line.expandtabs(4) for line in lines)))
    for candidate in candidates:
        if candidate.strip() and syntax_problem(candidate) is None:
            return candidate.strip("\n")
    return None


def _normalised(code: str) -> str:
    return "\n".join(line.rstrip() for line in textwrap.dedent(code).strip().split("\n"))


# --- JSON and plans -------------------------------------------------------------------------------------------------

def extract_json(text: str, want: type = list):
    """The first JSON value of type ``want`` in the reply: inside a ```json fence or in prose, with Python-style
    literals (single quotes, True/None), trailing commas and a cut-off end repaired."""
    text = (text or "").strip()
    if not text:
        raise ReplyError("the reply is empty")
    sources = [body for lang, body in fenced_blocks(text) if lang in ("json", "", "python")] + [text]
    opener = "[" if want is list else "{"
    for source in sources:
        for at in [i for i, ch in enumerate(source) if ch == opener][:20]:
            value = _decode(source[at:])
            if isinstance(value, want):
                return value
    kind = "JSON list" if want is list else "JSON object"
    raise ReplyError(f"no {kind} found in the reply")


def _decode(text: str):
    decoder = json.JSONDecoder()
    try:
        return decoder.raw_decode(text)[0]
    except json.JSONDecodeError:
        pass
    span = _balanced(text)
    for candidate in filter(None, [span, _closed(text)]):
        repaired = re.sub(r",\s*([\]}])", r"\1", candidate)
        try:
            return json.loads(repaired)
        except json.JSONDecodeError:
            pass
        try:
            return ast.literal_eval(repaired)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            pass
    return None


def _balanced(text: str) -> str | None:
    """The bracketed span starting at text[0], aware of strings; None when it never closes."""
    depth, quote, escaped = 0, None, False
    for i, ch in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth == 0:
                return text[: i + 1]
    return None


def _closed(text: str) -> str | None:
    """A cut-off JSON value closed after its last complete element (the reply hit max_tokens)."""
    stack, quote, escaped, last_complete = [], None, False, None
    for i, ch in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            stack.append("]" if ch == "[" else "}")
        elif ch in "]}":
            if not stack:
                return None
            stack.pop()
            if not stack:
                return None  # it closed: not cut off
        elif ch == "," and len(stack) == 1:
            last_complete = i
    if not stack or last_complete is None:
        return None
    return text[:last_complete] + stack[0]


def parse_plans(text: str, known: set[str] = frozenset(), limit: int = 10, prompt: str = "") -> list[str]:
    """Plans from a JSON list (strings, or objects with a "plan" field, or {"plans": [...]}), else from a numbered
    or bulleted list. Dropped: plans in ``known``, lines copied from the ``prompt`` (small models echo the list of
    tried plans), placeholders ("Replace ... with ...", "[Add, Add, Add]": fewer than three distinct words) and
    headings ("...:")."""
    items: list = []
    try:
        value = extract_json(text, list)
        items = value
    except ReplyError:
        try:
            value = extract_json(text, dict)
            items = value.get("plans") or ([value] if "plan" in value else [])
        except ReplyError:
            items = [m.group(1) for m in map(LIST_ITEM.match, (text or "").split("\n")) if m]
    seen_in_prompt = _squeezed(prompt)
    plans = []
    for item in items:
        plan = item.get("plan") or item.get("description") if isinstance(item, dict) else item
        if not isinstance(plan, str):
            continue
        plan = " ".join(plan.split()).strip(" \"'")[:800]
        words = {w.lower() for w in re.findall(r"[A-Za-z]{2,}", plan)}
        if (len(plan) < 10 or len(words) < 3 or "..." in plan or plan.endswith(":") or plan in known
                or plan in plans
                or any(k and k in plan for k in known) or (seen_in_prompt and _squeezed(plan) in seen_in_prompt)):
            continue
        plans.append(plan)
    if not plans:
        raise ReplyError("no new plan found: reply with a JSON list of plan strings" if not items else
                         "every plan in the reply was a placeholder, too short, copied from my message or already "
                         "tried")
    return plans[:limit]


def parse_text(text: str, *, min_chars: int = 20, max_chars: int = 1200, prompt: str = "") -> str:
    """Plain prose: fences and surrounding quotes removed, repeated lines dropped (small models loop), whitespace
    tidied, capped in length; refused when most of it is copied from the ``prompt``."""
    text = (text or "").strip()
    fences = fenced_blocks(text)
    if fences and len(text) - sum(len(b) for _, b in fences) < min_chars:
        text = "\n".join(b for _, b in fences)  # prose put inside a fence
    text = re.sub(r"```[^\n]*\n?", "", text).strip().strip("\"'").strip()
    lines, kept = [line.strip() for line in text.split("\n") if line.strip()], []
    for line in lines:
        if line not in kept:
            kept.append(line)
    seen_in_prompt = _squeezed(prompt)
    copied = [line for line in kept if len(line) > 15 and seen_in_prompt and _squeezed(line) in seen_in_prompt]
    if kept and len(copied) * 2 >= len(kept):
        raise ReplyError("the reply repeats my message instead of answering it")
    text = "\n".join(kept)
    if len(text) < min_chars:
        raise ReplyError(f"the reply is too short ({len(text)} characters)")
    if len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0] + " ..."
    return text


def _squeezed(text: str) -> str:
    """Lower-case words and numbers only: what is left to compare of a line a model copied with other punctuation."""
    return " ".join(re.sub(r"[^a-z0-9_.=]+", " ", (text or "").lower()).split())
