"""Shared fixtures: small competitions written from scikit-learn's bundled data sets (no network), the registry of the
installed plugins, the command line run for real, and third-party plugin packages pip-installed into this interpreter.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris

from core import logs
from core.plugins import DISABLE_ENV, load_plugins
from core.registry import build_registry

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_PACKAGES = Path(__file__).resolve().parent / "thirdparty_plugin"


# --- data ------------------------------------------------------------------------------------------------------

def _iris():
    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame["species"] = data.target_names[data.target]
    return frame.drop(columns="target"), "species", "setosa"


def _diabetes():
    frame = load_diabetes(as_frame=True).frame.rename(columns={"target": "progression"})
    return frame, "progression", 150.0


DATASETS = {"iris": _iris, "diabetes": _diabetes}
DESCRIPTIONS = {
    "iris": "# Iris species\n\nPredict the species of each iris in test.csv from its four measurements.\n",
    "diabetes": "# Diabetes progression\n\nPredict disease progression one year after baseline.\n",
}


@pytest.fixture
def make_competition(tmp_path):
    """Write an MLE-bench-style competition folder and return its path.

    ``train.csv`` (id, features, target), ``test.csv`` (no target), ``sample_submission.csv`` (id, target) and,
    unless turned off, ``description.md`` and the private ``answers.csv`` that scripts must never see.
    30 shuffled rows go to test, the rest to train.
    """
    def make(folder: str = "competition", dataset: str = "iris", *, description: bool = True,
             answers: bool = True) -> Path:
        frame, target, placeholder = DATASETS[dataset]()
        frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
        frame.insert(0, "id", np.arange(1000, 1000 + len(frame)))
        test, train = frame.iloc[:30], frame.iloc[30:]
        path = tmp_path / folder
        path.mkdir(parents=True)
        train.to_csv(path / "train.csv", index=False)
        test.drop(columns=target).to_csv(path / "test.csv", index=False)
        sample = test[["id"]].assign(**{target: placeholder})
        sample.to_csv(path / "sample_submission.csv", index=False)
        if description:
            (path / "description.md").write_text(DESCRIPTIONS[dataset])
        if answers:
            test[["id", target]].to_csv(path / "answers.csv", index=False)
        return path
    return make


# --- logs ------------------------------------------------------------------------------------------------------

@pytest.fixture(autouse=True, scope="session")
def _mlestar_logs_enabled():
    """Tests read mlestar's log records as an application would: with its packages enabled (a library is silent
    until then; tests/test_logs.py checks that in a fresh interpreter)."""
    logs.enable()


# --- plugins ---------------------------------------------------------------------------------------------------

@pytest.fixture
def registry():
    """Everything the installed plugins register, ignoring any MLESTAR_DISABLE_PLUGINS of the caller's shell."""
    return build_registry(load_plugins(env={}))


class PluginInstaller:
    """pip-installs the packages under tests/thirdparty_plugin/, offline, each set into its own folder that is put
    on this interpreter's ``sys.path`` (and on PYTHONPATH for the interpreters the tests start) only while in use.

    A real ``pip install`` as a user would do it, with the entry points found the same way, but the shared
    site-packages is never touched: a test session killed half-way leaves nothing installed, and two sessions
    running at once in the same virtual environment do not see each other's broken plugins.
    """

    def __init__(self, build_root: Path):
        self.build_root = build_root

    @contextmanager
    def installed(self, *folders: str) -> Iterator[Path]:
        target = self.build_root / ("site-" + "-".join(folders))
        if not target.exists():
            copies = []
            for folder in folders:
                copy = self.build_root / "src" / folder  # built from a copy: no build/ or egg-info in the repo
                if not copy.exists():
                    shutil.copytree(PLUGIN_PACKAGES / folder, copy)
                copies.append(str(copy))
            done = subprocess.run(
                [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", "install", "--no-deps",
                 "--no-build-isolation", "--no-index", "--target", str(target), *copies],
                check=False, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, f"pip install {' '.join(folders)} failed:\n{done.stdout}\n{done.stderr}"
        old_pythonpath = os.environ.get("PYTHONPATH")
        sys.path.insert(0, str(target))
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(target), old_pythonpath) if p)
        importlib.invalidate_caches()  # entry points and modules in the new folder are seen at once
        try:
            yield target
        finally:
            sys.path.remove(str(target))
            if old_pythonpath is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = old_pythonpath
            for name, module in list(sys.modules.items()):
                if str(target) in str(getattr(module, "__file__", None) or ""):
                    del sys.modules[name]
            importlib.invalidate_caches()


@pytest.fixture(scope="session")
def plugin_installer(tmp_path_factory) -> PluginInstaller:
    return PluginInstaller(tmp_path_factory.mktemp("plugin-builds"))


@pytest.fixture(scope="module")
def example_plugin(plugin_installer):
    """``mlestar-example-plugin`` (entry point ``example``) installed while the requesting module runs.

    It registers metric ``max_error``, search backend ``example_cards`` and policy ``example_policy``; modules
    that do not ask for it never see it.
    """
    with plugin_installer.installed("example"):
        yield "example"


# --- command line ----------------------------------------------------------------------------------------------

@pytest.fixture
def cli():
    """Run ``python -m core.run ARGS`` in a fresh interpreter, as a user would; returns the CompletedProcess.

    A wide terminal keeps rich's tables on one line per row; ``env`` adds variables (e.g. MLESTAR_DISABLE_PLUGINS).
    """
    def run(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
        full_env = {k: v for k, v in os.environ.items() if k != DISABLE_ENV}
        full_env.update(COLUMNS="400", **(env or {}))
        return subprocess.run([sys.executable, "-m", "core.run", *args], check=False, capture_output=True,
                              text=True, env=full_env, cwd=cwd, timeout=120)
    return run


def plugin_rows(stdout: str) -> dict[str, dict[str, str]]:
    """The rows of the ``plugins`` table by plugin name: package, version, module, hooks, status."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 6 and cells[0]:
            name, package, version, module, hooks, status = cells
            rows[name] = {"package": package, "version": version, "module": module, "hooks": hooks, "status": status}
    return rows


@pytest.fixture
def read_plugins_table():
    """Parse the table ``python -m core.run plugins`` prints (see ``plugin_rows``)."""
    return plugin_rows


@pytest.fixture(autouse=True)
def _no_plugin_block_from_the_shell(monkeypatch):
    """A MLESTAR_DISABLE_PLUGINS set in the developer's shell must not change what the tests load."""
    monkeypatch.delenv(DISABLE_ENV, raising=False)
pytest_plugins = ["llm_server", "rl_fixtures"]  # the LLM policy tests: SmolLM2 and a `transformers serve` for the session
