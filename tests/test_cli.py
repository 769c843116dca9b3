"""The command line, run for real in a fresh interpreter: ``plugins``, ``--help`` and ``validate``."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

BUILT_INS = {
    "metrics": ("plugins.metrics", "register_metrics"),
    "local": ("plugins.executor_local", "register_executors"),
    "catalogue": ("retrieval.catalogue", "register_search_backends"),
}


def test_plugins_lists_the_three_built_in_plugins_as_loaded_from_mlestar(cli, read_plugins_table):
    done = cli("plugins")
    rows = read_plugins_table(done.stdout)

    assert done.returncode == 0, done.stderr
    assert "mlestar plugins" in done.stdout
    version = metadata.version("mlestar")
    for name, (module, hooks) in BUILT_INS.items():
        assert rows[name] == {"package": "mlestar", "version": version, "module": module, "hooks": hooks,
                              "status": "loaded"}


def test_help_describes_the_commands(cli):
    done = cli("--help")

    assert done.returncode == 0
    assert done.stdout.startswith("usage: python -m core.run")
    for command in ("plugins", "validate", "graph"):
        assert command in done.stdout


def test_the_mlestar_script_is_the_same_command(cli):
    script = Path(sys.executable).parent / "mlestar"
    done = subprocess.run([str(script), "--help"], check=False, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "400"})

    assert done.returncode == 0
    assert done.stdout == cli("--help").stdout


def test_validate_prints_ok_with_what_it_resolved(tmp_path, make_competition, cli):
    competition = make_competition()
    task_file = tmp_path / "task.yaml"
    task_file.write_text("name: iris\ndata:\n  dir: competition\nmetric: accuracy\n")

    done = cli("validate", str(task_file), cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (f"{task_file}: ok — task 'iris', classification, metric accuracy, "
                                   f"target 'species', id id, modality inferred, output {competition.parent / 'out' / 'iris'}")
    assert done.stderr == ""


def test_validate_without_a_task_path_is_a_usage_error(cli):
    done = cli("validate")

    assert done.returncode == 2
    assert "the following arguments are required: task" in done.stderr
