"""The command line: ``python -m core.run task.yaml``, ``plugins``, ``validate`` and ``graph``.

This is the composition root: it wires the task spec, the plugin host and the graph together, and is the only
core module that imports from the layers above.
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from core.errors import UserError
from core.loading import load_with_plugins
from core.plugins import PluginHost, load_plugins

COMMANDS = ("plugins", "validate", "graph")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "plugins":
            return cmd_plugins(argv[1:])
        if argv and argv[0] == "validate":
            return cmd_validate(argv[1:])
        if argv and argv[0] == "graph":
            return cmd_graph(argv[1:])
        return cmd_run(argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; rerun with --resume to continue", file=sys.stderr)
        return 130


def cmd_plugins(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="python -m core.run plugins",
                            description="List every plugin found, its package and the hooks it implements.").parse_args(argv)
    host = load_plugins()
    print_plugins(host, Console(width=max(Console().width, 140)))
    for err in host.errors:
        print(f"error: {err}", file=sys.stderr)
    return 2 if host.errors else 0


def print_plugins(host: PluginHost, console: Console) -> None:
    table = Table(title="mlestar plugins")
    for col in ("name", "package", "version", "module", "hooks", "status"):
        table.add_column(col, overflow="fold")
    for name, info in sorted(host.infos.items()):
        status = "blocked" if info.blocked else ("FAILED: " + info.error if info.error else "loaded")
        table.add_row(name, info.distribution, info.version, info.module, ", ".join(info.hooks), status)
    console.print(table)


def cmd_validate(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.run validate", description="Check a task.yaml.")
    parser.add_argument("task")
    args = parser.parse_args(argv)
    from graphs.build import plan_topology  # composition root: the only upward import

    task, registry = load_with_plugins(args.task)
    plan_topology(registry, task)  # the graph the run would build: node placements that never reach submit fail here
    targets = ", ".join(f"'{t}'" for t in task.targets)
    print(f"{args.task}: ok — task '{task.name}', {task.task_type}, metric {task.metric}, "
          f"target{'s' if len(task.targets) > 1 else ''} {targets}, id {task.id_column or '(row order)'}, "
          f"modality {task.modality or 'inferred'}, output {task.output}")
    return 0


def cmd_graph(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.run graph", description="Print the graph in force.")
    parser.add_argument("task")
    args = parser.parse_args(argv)
    from graphs.build import describe_topology  # composition root: the only upward import

    task, registry = load_with_plugins(args.task)
    print(describe_topology(task, registry))
    return 0


def cmd_run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m core.run",
        description="Run the agent on a task: python -m core.run task.yaml | plugins | validate task.yaml | graph task.yaml")
    parser.add_argument("task", help="path of task.yaml")
    parser.add_argument("--out", help="output folder (default: task.yaml's output)")
    parser.add_argument("--resume", action="store_true", help="continue the run in the output folder")
    parser.add_argument("--budget", type=float, help="total wall-clock seconds (overrides budget.total_seconds)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug output on the console")
    args = parser.parse_args(argv)
    from graphs.runner import run_task  # composition root: the only upward import

    task, registry = load_with_plugins(args.task, args.out)
    if args.budget is not None:
        if args.budget <= 0:
            raise UserError("--budget: must be a positive number of seconds")
        task = task.model_copy(update={"budget": task.budget.model_copy(update={"total_seconds": args.budget})})
    return run_task(task, registry, resume=args.resume, verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
