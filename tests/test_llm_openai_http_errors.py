"""The ``openai`` policy's retries on 429 and 5xx and its concurrency limit, against a real HTTP server on
127.0.0.1 that answers like an overloaded OpenAI-compatible endpoint (status codes first, then a completion)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.store import RunStore
from plugins.policy_openai import OpenAIPolicy
from core.policy import AblationEffect, AblationView

TABLE = AblationView(base_score=0.95, rows=[AblationEffect(block="model#0", kind="model", action="simplify",
                                                           score=0.9, effect=0.05)])


class Endpoint:
    """Serves /v1/chat/completions: the scripted statuses first, then a real completion after ``delay`` seconds;
    counts requests and the most that were in flight at once."""

    def __init__(self, statuses: list[int], delay: float = 0.0):
        self.statuses, self.delay = list(statuses), delay
        self.requests = self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with endpoint.lock:
                    endpoint.requests += 1
                    status = endpoint.statuses.pop(0) if endpoint.statuses else 200
                    endpoint.in_flight += 1
                    endpoint.most_in_flight = max(endpoint.most_in_flight, endpoint.in_flight)
                try:
                    time.sleep(endpoint.delay)
                    body = {"error": {"message": f"status {status}"}} if status != 200 else {
                        "id": "x", "object": "chat.completion", "created": 0, "model": "m",
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": "The model block matters most."}}],
                        "usage": {"prompt_tokens": 11, "completion_tokens": 6, "total_tokens": 17}}
                    data = json.dumps(body).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    with endpoint.lock:
                        endpoint.in_flight -= 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def policy_for(endpoint: Endpoint, store: RunStore, penguins, **options) -> OpenAIPolicy:
    return OpenAIPolicy({"model": "m", "base_url": endpoint.base_url, "backoff": 0.05, "parse_retries": 0,
                         "max_tokens": 8, **options},
                        task=penguins.task, store=store, registry=penguins.registry, run_id="http")


@pytest.mark.slow
def test_429_and_503_are_retried_with_backoff_and_the_answer_still_arrives(penguins, tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    with Endpoint([429, 503]) as endpoint:
        text = policy_for(endpoint, store, penguins, retries=3).summarize_ablation(penguins.ctx, TABLE)
    assert endpoint.requests == 3
    assert "model block matters most" in text
    [call] = store.llm_calls("http")
    assert call["ok"] and call["tokens_in"] == 11


@pytest.mark.slow
def test_a_server_that_keeps_failing_costs_a_none_within_the_retry_budget(penguins, tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    with Endpoint([500] * 10) as endpoint:
        answer = policy_for(endpoint, store, penguins, retries=2).summarize_ablation(penguins.ctx, TABLE)
    assert answer is None and endpoint.requests == 3  # one try and two retries, then the heuristic's turn


@pytest.mark.slow
def test_parallel_roles_never_have_more_requests_in_flight_than_the_concurrency_limit(penguins, tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    with Endpoint([], delay=0.4) as endpoint:
        policy = policy_for(endpoint, store, penguins, concurrency=2)
        threads = [threading.Thread(target=policy.summarize_ablation, args=(penguins.ctx, TABLE)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert endpoint.requests == 6 and endpoint.most_in_flight == 2
