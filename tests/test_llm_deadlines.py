"""The budget holds with an LLM policy: each role call gets a deadline from the time left (``ask`` sets it through
``LLMPolicy.deadline``), the ``hf`` policy stops generating there and the ``openai`` policy stops waiting there, a
reply cut by it is a failed call whose error says "deadline", and a role whose answers keep failing is handed to the
heuristic for the rest of the run (logged once, listed in result.json and report.md). The model-free tests script
the replies; the slow ones use the bundled SmolLM2, in-process, behind `transformers serve`, and in a whole run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

from core.cards import ModelCard
from core.policy import AblationEffect, AblationView
from core.store import RunStore
from graphs.evaluate import CALL_SHARE, ask
from plugins.llm import Completion, LLMPolicy, LLMUnavailable, usage_summary, usage_table
from plugins.policy_hf import HFPolicy
from plugins.policy_openai import OpenAIPolicy

ROOT = Path(__file__).resolve().parents[1]
TABLE = AblationView(base_score=0.97, rows=[AblationEffect(block="model#0", kind="model", action="simplify",
                                                           score=0.90, effect=0.07)])
USABLE = "The model block matters most: simplifying it cost seven points of accuracy."
CARD = ModelCard(name="random_forest", family="tree", task_types=["classification"], why="A strong baseline.",
                 example_code="from sklearn.ensemble import RandomForestClassifier")
# a short prompt (read in well under a second) that asks for a long reply: only the deadline stops it
LONG_REPLY = SimpleNamespace(prompts={"write_initial": "Write a very long Python script that trains a {model_name} "
                                                       "model, with a comment on every line."},
                             owner=lambda kind, name: "test")


class Scripted(LLMPolicy):
    """An LLM policy whose model answers from a script: a reply text, or an exception to raise."""

    name = "scripted"
    model_name = "scripted"

    def __init__(self, script: list, **options):
        super().__init__({"parse_retries": 0, **options})
        self.script = list(script)
        self.calls = 0

    def complete(self, role, messages, max_tokens, n=1, temperature=None):
        self.calls += 1
        reply = self.script.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return [Completion(text=reply, finish_reason="stop")]


def run_context(policy, ctx, seconds_left: float = 400.0) -> SimpleNamespace:
    """What ``ask`` reads of a RunContext: the policies, the task context, the hand-overs and the clock."""
    heuristic = SimpleNamespace(name="heuristic", summarize_ablation=lambda _ctx, _table: "heuristic summary")
    return SimpleNamespace(policy=policy, fallback=heuristic, ctx=ctx, handed_to_heuristic={},
                           search_time_left=lambda: seconds_left)


def test_a_role_failing_give_up_after_times_in_a_row_is_handed_to_the_heuristic_once(penguins, caplog_warnings):
    policy = Scripted(["", LLMUnavailable("HTTP 503"), ""], give_up_after=3)
    rc = run_context(policy, penguins.ctx)
    answers = [ask(rc, "summarize_ablation", TABLE) for _ in range(5)]
    assert answers == ["heuristic summary"] * 5
    assert policy.calls == 3  # not asked after the third unusable answer
    assert list(rc.handed_to_heuristic) == ["summarize_ablation"]
    assert rc.handed_to_heuristic["summarize_ablation"].startswith("3 unusable answers in a row (last: the reply is")
    handed = [m for m in caplog_warnings if "for the rest of the run" in m]
    assert len(handed) == 1 and "summarize_ablation" in handed[0] and "3 unusable answers" in handed[0]


def test_a_usable_answer_resets_the_count_and_give_up_after_0_never_hands_over(penguins):
    policy = Scripted(["", "", USABLE, "", ""], give_up_after=3)
    rc = run_context(policy, penguins.ctx)
    assert [ask(rc, "summarize_ablation", TABLE) for _ in range(5)][2] == USABLE
    assert rc.handed_to_heuristic == {}

    never = Scripted([""] * 6, give_up_after=0)
    rc = run_context(never, penguins.ctx)
    for _ in range(6):
        ask(rc, "summarize_ablation", TABLE)
    assert never.calls == 6 and rc.handed_to_heuristic == {}


def test_ask_gives_a_call_a_share_of_the_search_time_left_capped_by_the_policys_timeout(penguins):
    seen = []

    class Timed(Scripted):
        def complete(self, role, messages, max_tokens, n=1, temperature=None):
            seen.append(self.call_seconds())
            return super().complete(role, messages, max_tokens, n, temperature)

    policy = Timed([USABLE, USABLE], timeout=60)
    ask(run_context(policy, penguins.ctx, seconds_left=100.0), "summarize_ablation", TABLE)
    ask(run_context(policy, penguins.ctx, seconds_left=1000.0), "summarize_ablation", TABLE)
    assert CALL_SHARE * 100 - 1 < seen[0] <= CALL_SHARE * 100 and seen[1] == 60
    assert policy.call_seconds() == 60  # outside a deadline: the policy's own timeout


def test_no_call_starts_without_time_left_and_that_is_no_failure_of_the_model(penguins, tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    policy = Scripted(["", ""], give_up_after=1)
    policy.store, policy.run_id = store, "no-time"
    rc = run_context(policy, penguins.ctx, seconds_left=-5.0)  # the search time is spent
    assert ask(rc, "summarize_ablation", TABLE) == "heuristic summary"
    assert policy.calls == 0 and store.llm_calls("no-time") == [] and rc.handed_to_heuristic == {}


@pytest.fixture
def caplog_warnings():
    """The messages of the warnings logged (loguru) while the test runs."""
    from loguru import logger

    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(m.record["message"]), level="WARNING")
    yield messages
    logger.remove(sink)


# --- the real model ---------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_an_hf_generation_stops_at_its_deadline_and_the_call_is_recorded_as_failed(smollm2, penguins, tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    policy = HFPolicy({"max_tokens": 2000, "parse_retries": 1}, task=penguins.task, store=store,
                      registry=LONG_REPLY, run_id="hf-deadline")
    policy.load()  # loading is not what is timed
    with policy.deadline(2.0) as report:
        began = time.monotonic()
        script = policy.write_initial(penguins.ctx, CARD)
        seconds = time.monotonic() - began
    print(f"\nhf call with a 2 s deadline: {seconds:.2f}s")
    assert script is None and seconds < 2.0 + 1.0
    [call] = store.llm_calls("hf-deadline")  # cut by the deadline: failed, not retried
    assert not call["ok"] and call["error"].startswith("deadline") and 0 < call["tokens_out"] < 200
    assert report.error.startswith("deadline") and report.failures_in_a_row == 1 and not report.give_up

    with policy.deadline(policy.MIN_CALL_SECONDS / 2):  # too little time to start: None at once, nothing recorded
        began = time.monotonic()
        assert policy.write_initial(penguins.ctx, CARD) is None
        assert time.monotonic() - began < 0.5
    assert len(store.llm_calls("hf-deadline")) == 1


@pytest.mark.slow
def test_an_openai_request_past_its_deadline_returns_none_within_a_few_seconds(llm_server, penguins, tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    options = {"model": llm_server.model, "base_url": llm_server.base_url, "temperature": 0.0, "max_tokens": 120}
    policy = OpenAIPolicy(options, task=penguins.task, store=store, registry=LONG_REPLY, run_id="openai-deadline")
    policy.client()  # importing the SDK is not what is timed
    with policy.deadline(1.0) as report:
        began = time.monotonic()
        script = policy.write_initial(penguins.ctx, CARD)
        seconds = time.monotonic() - began
    print(f"\nopenai call with a 1 s deadline: {seconds:.2f}s")
    assert script is None and seconds < 3.0
    [call] = store.llm_calls("openai-deadline")  # the request timed out at the deadline: no retry
    assert not call["ok"] and call["error"].startswith("deadline: no reply within")
    assert report.error.startswith("deadline")
    # the server finishes the abandoned generation: wait for it, so the next test finds it idle
    policy.complete("write_initial", [{"role": "user", "content": "Hi"}], 1)


@pytest.mark.slow
def test_a_run_with_the_hf_policy_keeps_its_budget_hands_write_initial_over_and_still_refines(smollm2, tmp_path):
    # Also the whole run with the in-process model (SmolLM2 on a copy of examples/penguins): it ends with a valid
    # submission whatever the model writes, and every call is in the run store for the usage summary.
    budget = 110
    task_dir = tmp_path / "penguins"
    task_dir.mkdir()
    for name in ("description.md", "train.csv", "test.csv"):
        shutil.copyfile(ROOT / "examples" / "penguins" / name, task_dir / name)
    task = yaml.safe_load((ROOT / "examples" / "penguins" / "task.yaml").read_text())
    task.update(budget={**task["budget"], "total_seconds": budget, "run_timeout": 60, "outer_steps": 1,
                        "ensemble_rounds": 1},
                policy={"name": "hf"}, output=str(tmp_path / "out"))
    (task_dir / "task.yaml").write_text(yaml.safe_dump(task))

    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "core.run", str(task_dir / "task.yaml")], cwd=ROOT, check=False,
                          capture_output=True, text=True, timeout=3 * budget, env={**os.environ, "COLUMNS": "200"})
    seconds = time.monotonic() - began
    out = tmp_path / "out"
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    print(f"\nrun: {seconds:.1f}s for a {budget}s budget (overrun {seconds - budget:+.1f}s; the agent's clock "
          f"{result['wall_seconds']}s); handed to the heuristic: {result['handed_to_heuristic']}")
    assert seconds <= 1.1 * budget
    assert task["budget"]["models"] >= 3  # three drafts: write_initial fails three times (SmolLM2 writes no parser)
    assert "write_initial" in result["handed_to_heuristic"]
    assert any(s["stage"].startswith("outer_") for s in result["stages"])  # refinement still had time
    report = (out / "report.md").read_text()
    assert "role write_initial handed to the heuristic policy: 3 unusable answers in a row" in report
    log = (out / "run.log").read_text()
    for role in result["handed_to_heuristic"]:
        assert sum(f"the heuristic policy answers {role} for the rest of the run" in line
                   for line in log.splitlines()) == 1
    calls = RunStore(out / "runs.sqlite").llm_calls()
    written = [c for c in calls if c["role"] == "write_initial"]
    assert len(written) >= 3 and not any(c["ok"] for c in written)

    submission, test = pd.read_csv(out / "submission.csv"), pd.read_csv(task_dir / "test.csv")
    assert list(submission.columns) == ["id", "species"] and sorted(submission["id"]) == sorted(test["id"])
    assert set(submission["species"]) <= {"Adelie", "Chinstrap", "Gentoo"}
    assert {c["model"] for c in calls} == {"smollm2-135m-instruct"}
    assert {"write_initial", "simplify_block", "summarize_ablation", "plan_refinement"} <= {c["role"] for c in calls}
    assert all(c["node"] for c in calls)  # each call knows the graph node it was made from
    summary = usage_summary(RunStore(out / "runs.sqlite"))
    assert summary["total"]["calls"] == len(calls)
    print(usage_table(summary))
