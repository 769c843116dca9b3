"""The ``openai`` policy against a real OpenAI-compatible server (`transformers serve` with SmolLM2-135M-Instruct):
every role gets a parsed answer or None after one retry, each call is recorded with tokens and seconds, a server that
ignores ``n`` is asked again, a server killed mid-reply costs one None within the retry budget, and a restarted server
is used again. Token caps are tiny: these tests check the plumbing, not the model's skill."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ablation import split_blocks
from core.cards import ModelCard
from core.policy import AblationEffect, AblationView, BlockInfo, CandidateInfo, PlanRecord
from core.store import RunStore
from image_tasks import shades_competition
from plugins.llm import usage_summary, usage_table
from plugins.policy_openai import OpenAIPolicy

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]

SCRIPT = '''import pandas as pd
from sklearn.linear_model import LogisticRegression

train = pd.read_csv("./input/train.csv")
valid = pd.read_csv("./input/valid.csv")
test = pd.read_csv("./input/test.csv")
FEATURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
medians = train[FEATURES].median()

model = LogisticRegression(max_iter=1000)
model.fit(train[FEATURES].fillna(medians), train["species"])

val_predictions = pd.DataFrame({"id": valid["id"], "species": model.predict(valid[FEATURES].fillna(medians))})
submission = pd.DataFrame({"id": test["id"], "species": model.predict(test[FEATURES].fillna(medians))})
val_predictions.to_csv("val_predictions.csv", index=False)
submission.to_csv("submission.csv", index=False)
print(f"Final Validation Performance: {(val_predictions['species'] == valid['species']).mean():.6f}")
'''
# small enough for the whole-script roles to write back within their tiny token caps
TINY = 'import pandas as pd\nv = pd.read_csv("./input/valid.csv")\nv[["id", "species"]].to_csv("val_predictions.csv")\n'
TABLE = AblationView(base_score=0.97, maximize=True, rows=[
    AblationEffect(block="model#0", kind="model", action="remove", status="error"),
    AblationEffect(block="preprocess#0", kind="preprocess", action="simplify", score=0.93, effect=0.04)])
CAPS = {"summarize_search": 16, "write_initial": 16, "merge": 80, "simplify_block": 16, "summarize_ablation": 16,
        "plan_refinement": 16, "implement_plan": 16, "debug": 40, "plan_ensemble": 16, "implement_ensemble": 16,
        "fix_leakage": 40, "use_all_data": 40}
TYPES = {"summarize_search": list, "plan_refinement": list}


def model_block() -> BlockInfo:
    block = next(b for b in split_blocks(SCRIPT) if b.kind == "model")
    return BlockInfo(key=block.key, kind=block.kind, source=block.source)


def role_arguments(ctx) -> dict[str, tuple]:
    card = ModelCard(name="logistic_regression", family="linear", task_types=["classification"],
                     why="A fast linear baseline.", example_code="from sklearn.linear_model import LogisticRegression\n"
                                                                  "model = LogisticRegression().fit(X, y)")
    candidates = [CandidateInfo(name="c0", score=0.95, model="forest"), CandidateInfo(name="c1", score=0.93)]
    history = [PlanRecord(plan="Use 300 trees instead of 100.", score=0.94, status="ok")]
    return {
        "summarize_search": ([{"title": "Random forests for tabular data", "href": "https://example.org/rf",
                               "body": "RandomForestClassifier from scikit-learn handles mixed features well."}], 2),
        "write_initial": (card,),
        "merge": (TINY, TINY.replace("valid.csv", "test.csv")),
        "simplify_block": (SCRIPT, model_block()),
        "summarize_ablation": (TABLE,),
        "plan_refinement": (SCRIPT, model_block(), AblationView(base_score=0.97, text="The model block matters most."), history, 2),
        "implement_plan": (SCRIPT, model_block(), "Use C=0.5 in the logistic regression."),
        "debug": (TINY, "Traceback (most recent call last):\nKeyError: 'species'"),
        "plan_ensemble": (candidates, []),
        "implement_ensemble": (candidates, "Average the candidates' labels by majority vote."),
        "fix_leakage": (TINY, ["line 2: a scaler is fitted on valid"]),
        "use_all_data": (TINY, ["stores.csv"]),
    }


@pytest.fixture(scope="module")
def served(llm_server, penguins, tmp_path_factory):
    """An openai policy on the session's server, recording into its own run store."""
    store = RunStore(tmp_path_factory.mktemp("openai-calls") / "runs.sqlite")
    policy = OpenAIPolicy({"model": llm_server.model, "base_url": llm_server.base_url, "temperature": 0.7,
                           "max_tokens": CAPS, "max_prompt_chars": 1500, "timeout": 120, "retries": 1,
                           "backoff": 0.2},
                          task=penguins.task, store=store, registry=penguins.registry, run_id="openai-test")
    return policy, store


@pytest.mark.parametrize("role", list(CAPS))
def test_every_role_answers_through_a_real_server_and_every_call_is_recorded(role, served, penguins):
    policy, store = served
    before = len(store.llm_calls("openai-test"))
    answer = getattr(policy, role)(penguins.ctx, *role_arguments(penguins.ctx)[role])
    calls = store.llm_calls("openai-test")[before:]
    samples = 2 if role == "plan_refinement" else 1  # n=2, and the server ignores n: two requests
    assert calls, f"{role}: no call recorded"
    assert {c["role"] for c in calls} == {role}
    for call in calls:
        assert call["model"] == policy.model and (call["error"] is None) == bool(call["ok"])
        assert call["tokens_in"] > 0 and 0 <= call["tokens_out"] <= CAPS[role] and call["seconds"] > 0
        assert call["reply"] is not None
        assert json.loads(call["prompt"])[0]["role"] == "system"
    if answer is None:
        # nothing usable: the first samples, then exactly one retry that shows the parse error
        assert len(calls) == samples + 1 and not any(c["ok"] for c in calls)
        retry = json.loads(calls[-1]["prompt"])
        assert [m["role"] for m in retry] == ["system", "user", "assistant", "user"]
        assert retry[-1]["content"].startswith("That reply could not be used: " + calls[0]["error"][:40])
    else:
        assert isinstance(answer, TYPES.get(role, str)) and answer
        assert any(c["ok"] for c in calls) and len(calls) in (samples, samples + 1)


def test_usage_is_summed_per_role_from_the_run_store(served):
    _, store = served
    calls = store.llm_calls("openai-test")
    summary = usage_summary(store, "openai-test", prices={"input": 1e-6, "output": 2e-6})
    assert set(summary) == {c["role"] for c in calls} | {"total"}
    total = summary["total"]
    assert total["calls"] == len(calls) and total["ok"] == sum(c["ok"] for c in calls)
    assert total["tokens_in"] == sum(c["tokens_in"] for c in calls) > 0
    assert total["tokens_out"] == sum(c["tokens_out"] for c in calls) > 0
    assert total["cost"] == pytest.approx(total["tokens_in"] * 1e-6 + total["tokens_out"] * 2e-6)
    assert summary["plan_refinement"]["first_try"] == 2  # two samples of the first prompt; a retry is not counted
    table = usage_table(summary)
    assert table.splitlines()[0].startswith("| role | calls |") and "| total |" in table
    print("\n" + table)


def test_a_server_killed_mid_reply_costs_one_none_and_a_restarted_server_is_used_again(llm_server, penguins,
                                                                                         tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    retries, backoff = 2, 0.5
    policy = OpenAIPolicy({"model": llm_server.model, "base_url": llm_server.base_url, "timeout": 60,
                           "retries": retries, "backoff": backoff, "max_tokens": {"summarize_ablation": 48},
                           "max_prompt_chars": 1200},
                          task=penguins.task, store=store, registry=penguins.registry, run_id="kill")
    seen = llm_server.requests_seen()
    outcome = {}

    def ask():
        outcome["answer"] = policy.summarize_ablation(penguins.ctx, TABLE)
        outcome["done"] = time.monotonic()

    caller = threading.Thread(target=ask)
    caller.start()
    deadline = time.monotonic() + 60
    while llm_server.requests_seen() == seen and time.monotonic() < deadline:
        time.sleep(0.05)
    assert llm_server.requests_seen() > seen, "the request never reached the server"
    time.sleep(0.5)  # reading the prompt, generating
    llm_server.stop(kill=True)
    killed = time.monotonic()
    caller.join(timeout=60)
    assert not caller.is_alive()
    assert outcome["answer"] is None
    budget = sum(backoff * 2 ** i * 1.25 for i in range(retries)) + 5  # the waits, plus refused connections
    assert outcome["done"] - killed < budget
    [call] = store.llm_calls("kill")
    assert call["ok"] == 0 and call["reply"] is None and call["tokens_out"] == 0
    assert call["error"].startswith("APIConnectionError") and f"after {retries + 1} attempts" in call["error"]

    llm_server.start()
    policy.summarize_ablation(penguins.ctx, TABLE)
    again = store.llm_calls("kill")[1]
    assert again["reply"] is not None and again["tokens_out"] > 0, again["error"]


def test_the_api_key_is_sent_but_never_recorded(llm_server, penguins, tmp_path, monkeypatch):
    secret = "sk-mlestar-test-0123456789abcdef"
    monkeypatch.setenv("MLESTAR_TEST_API_KEY", secret)
    store = RunStore(tmp_path / "runs.sqlite")
    policy = OpenAIPolicy({"model": llm_server.model, "base_url": llm_server.base_url,
                           "api_key_env": "MLESTAR_TEST_API_KEY", "max_tokens": 8, "parse_retries": 0},
                          task=penguins.task, store=store, registry=penguins.registry, run_id="key")
    policy.summarize_ablation(penguins.ctx, TABLE)
    assert policy.client().api_key == secret
    [call] = store.llm_calls("key")
    assert call["reply"] is not None
    assert secret not in json.dumps(call)
    assert secret not in (tmp_path / "runs.sqlite").read_bytes().decode("latin-1")


def test_a_run_on_an_image_task_shows_the_served_model_its_folders_and_ends_with_a_valid_submission(llm_server,
                                                                                                  tmp_path):
    # The listing of ./input/ (folders, file types, where each row's image is) reaches the model's prompts; whatever
    # SmolLM2 writes, the run ends with a submission for every test id (the heuristic steps in where it fails).
    folder = shades_competition(tmp_path / "shades")
    task = yaml.safe_load((folder / "task.yaml").read_text())
    task.update(budget={"total_seconds": 90, "run_timeout": 30, "models": 2, "plans": 1, "outer_steps": 1,
                        "ensemble_rounds": 1, "debug_retries": 0},
                policy={"name": "openai", "options": {"model": llm_server.model, "base_url": llm_server.base_url,
                                                      "max_tokens": 64, "timeout": 30}},
                strategy={"anytime": False},  # the prompts and the submission are under test, not the search after
                output=str(tmp_path / "out"))
    (folder / "task.yaml").write_text(yaml.safe_dump(task))
    done = subprocess.run([sys.executable, "-m", "core.run", str(folder / "task.yaml")], cwd=ROOT, check=False,
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    calls = RunStore(tmp_path / "out" / "runs.sqlite").llm_calls()
    prompts = [json.loads(c["prompt"])[-1]["content"] for c in calls if c["role"] == "write_initial"]
    assert prompts, "no write_initial call reached the server"
    assert "Folder ./input/train/ (40 files: 40 .png)" in prompts[0]
    assert "Each row's image: ./input/train/<id>.png" in prompts[0] and "CPU only (no GPU)" in prompts[0]
    submission = pd.read_csv(tmp_path / "out" / "submission.csv")
    assert list(submission.columns) == ["id", "label"]
    assert sorted(submission["id"]) == [f"t{k:03d}" for k in range(10)] and set(submission["label"]) <= {0, 1}
