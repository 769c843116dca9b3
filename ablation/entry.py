"""Which statements a script's blocks are made of: its top level, or the body of its entry point (the
`if __name__ == "__main__":` guard, or the `main()` that the guard or a top-level call runs)."""

from __future__ import annotations

import ast


def segments(tree: ast.Module, lines: list[str]) -> list[tuple[list[ast.stmt], int]]:
    """Runs of sibling statements to split, in script order, each with the line its leading comments stay below.

    The entry point's own statement (the guard, or `def main():` and the statement calling it) is in no run; the
    body it holds is a run of its own, so the blocks found there are indented.
    """
    entry = _entry(tree, lines)
    if entry is None:
        return [(tree.body, 0)] if tree.body else []
    container, scaffold = entry
    runs: list[tuple[list[ast.stmt], int]] = []
    run: list[ast.stmt] = []
    floor = 0
    for stmt in tree.body:
        if stmt is container or any(stmt is s for s in scaffold):
            if run:
                runs.append((run, floor))
            run = []
            if stmt is container:
                runs.append((container.body, container.lineno))
            floor = stmt.end_lineno or stmt.lineno
        else:
            run.append(stmt)
    if run:
        runs.append((run, floor))
    return runs


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
    line = first_line(first)
    if line <= node.lineno:
        return False
    # after a multi-line header, `a, b): run()` starts on a later line but still shares it with the header
    return _starts_line(first, lines)


def _starts_line(stmt: ast.stmt, lines: list[str]) -> bool:
    if getattr(stmt, "decorator_list", None):
        return True  # a decorator always opens its own line
    return not lines[stmt.lineno - 1].encode()[: stmt.col_offset].strip()  # col_offset counts UTF-8 bytes


def first_line(stmt: ast.stmt) -> int:
    """First line of a statement, counting its decorators."""
    decorators = getattr(stmt, "decorator_list", None) or []
    return min([stmt.lineno, *(d.lineno for d in decorators)])
