"""bench/hostile.py's hostile scripts, a quick subset run through its functions: what the executor holds without
isolation and under bubblewrap."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from core import sandbox

HOSTILE = Path(__file__).resolve().parents[1] / "bench" / "hostile.py"


def _load_hostile():
    # bench/ is a folder of scripts, not a package: load the benchmark from its file
    spec = importlib.util.spec_from_file_location("bench_hostile", HOSTILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


hostile = _load_hostile()
pytestmark = pytest.mark.slow


def outcomes(mode: str, *names: str) -> dict:
    assert set(names) <= set(hostile.CASE_NAMES)
    ran = hostile.run_mode(mode, [c for c in hostile.CASES if c.name in names])
    assert ran is not None, f"mode {mode} did not run"
    return {o.case: o for o in ran}


@pytest.fixture(scope="module")
def without_isolation() -> dict:
    return outcomes("none", "memory_hog", "api_key", "fake_score", "orphan_child")


@pytest.fixture(scope="module")
def with_bwrap() -> dict:
    if not sandbox.bwrap_works():
        pytest.skip("bubblewrap is missing or cannot create namespaces here")
    return outcomes("bwrap", "peek_answers", "api_key")


def test_without_isolation_a_script_allocating_12_gib_is_stopped_out_of_memory_within_seconds(without_isolation):
    hog = without_isolation["memory_hog"]
    assert hog.held, hog.note
    assert hog.status == "out_of_memory" and hog.seconds < 30


def test_without_isolation_a_faked_score_line_does_not_become_the_frameworks_score(without_isolation):
    fake = without_isolation["fake_score"]
    assert fake.held, fake.note
    assert "printed 1.0" in fake.note


def test_without_isolation_a_child_left_running_by_a_script_dies_with_the_run(without_isolation):
    orphan = without_isolation["orphan_child"]
    assert orphan.held, orphan.note


def test_without_isolation_an_api_key_in_the_parent_environment_is_not_in_the_scripts_environment(
        without_isolation):
    assert "os.environ: clean" in without_isolation["api_key"].note


@pytest.mark.xfail(strict=True, reason="without isolation a script runs as the same user with the host's /proc: it "
                                       "reads the key from /proc/<pid>/environ of a process started with it (the "
                                       "mlestar process itself, when the user exported the key)")
def test_without_isolation_a_script_finds_no_api_key_anywhere(without_isolation):
    key = without_isolation["api_key"]
    assert key.held, key.note


def test_with_bwrap_a_script_finds_neither_the_private_answers_nor_the_validation_truth(with_bwrap):
    peek = with_bwrap["peek_answers"]
    assert peek.held, peek.note
    assert peek.note == "by absolute path: nothing; by relative walk: nothing"


def test_with_bwrap_a_script_finds_no_api_key_anywhere(with_bwrap):
    key = with_bwrap["api_key"]
    assert key.held, key.note
