"""mlestar logs as a library should: nowhere until the application enables it, so an app that embeds the graph
keeps its own stderr; the command lines enable it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# A missing run store makes the history backend warn: a real log call from inside the library.
WARN = """
import sys
from loguru import logger
{enable}
from retrieval.history import HistoryBackend
HistoryBackend({{"stores": ["/nowhere/runs.sqlite"]}}, cache_dir=None).store_paths()
"""


def run(enable: str) -> str:
    done = subprocess.run([sys.executable, "-c", WARN.format(enable=enable)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_the_library_logs_nothing_until_the_application_enables_it():
    assert run("") == ""
    assert "run store /nowhere/runs.sqlite not found" in run("from core import logs\nlogs.enable()")
