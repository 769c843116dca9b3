"""The ``openai`` policy: every role answered by a chat model behind an OpenAI-compatible API (OpenAI itself, or a
local server such as ``transformers serve`` or vLLM), through the official ``openai`` SDK, with retries and a
concurrency limit, and a heuristic fallback whenever a call fails for good."""

from __future__ import annotations

import os
import random
import threading
import time

from loguru import logger

from core.errors import PluginError
from core.hookspecs import hookimpl
from plugins.llm import Completion, LLMPolicy, LLMUnavailable, share
from plugins.llm.policy import DEADLINE

LOCAL_KEY = "not-needed"  # what a keyless local server is sent (the SDK insists on some key)


class OpenAIPolicy(LLMPolicy):
    """Options (besides LLMPolicy's ``max_tokens``, ``max_prompt_chars``, ``temperature``, ``parse_retries``,
    ``prices``, ``action_format``, ``answer_roles``, ``give_up_after``, and ``timeout``: seconds one request may
    take, default 300 or the task's run_timeout when smaller):

    - ``model`` (required): the model name the server knows;
    - ``base_url``: the API's base URL, e.g. ``http://127.0.0.1:8000/v1`` (default: the SDK's, i.e. OpenAI or
      ``OPENAI_BASE_URL``);
    - ``api_key_env``: the environment variable holding the API key (default ``OPENAI_API_KEY``); with a
      ``base_url`` and that variable unset, a placeholder key is sent (local servers need none);
    - ``retries``: further attempts after a connection error, timeout, 429 or 5xx (default 3), waiting
      ``backoff`` seconds (default 1.0), doubled each time, with jitter; a call that still fails returns None;
    - ``concurrency``: most requests in flight at once across parallel nodes (default 2).

    A request's HTTP timeout is the call's time left (``call_seconds()``, counted once a concurrency slot is free);
    a request that runs out of it, or a retry whose backoff would end past it, ends the call (LLMUnavailable,
    DEADLINE).
    """

    name = "openai"
    OPTIONS = ("model", "base_url", "api_key_env", "retries", "backoff", "concurrency")
    DEFAULT_TEMPERATURE = 0.2

    def __init__(self, options: dict | None = None, **kwargs):
        super().__init__(options, **kwargs)
        opts = self.options
        model = opts.get("model")
        if not isinstance(model, str) or not model.strip():
            raise PluginError("policy openai: option 'model' is required (the model name the API serves, e.g. "
                              "gpt-4o-mini, or the folder a local `transformers serve` was started with)")
        self.model = model
        self.base_url = opts.get("base_url")
        if self.base_url is not None and not (isinstance(self.base_url, str) and self.base_url.startswith("http")):
            raise PluginError(f"policy openai: option 'base_url' must be an http(s) URL, got {self.base_url!r}")
        key_env = opts.get("api_key_env", "OPENAI_API_KEY")
        if not isinstance(key_env, str) or not key_env:
            raise PluginError(f"policy openai: option 'api_key_env' must name an environment variable, got {key_env!r}")
        self.api_key_env = key_env
        if not os.environ.get(key_env) and self.base_url is None and not os.environ.get("OPENAI_BASE_URL"):
            raise PluginError(f"policy openai: environment variable {key_env} is not set; export the API key there "
                              f"(option api_key_env names another variable), or give base_url for a local server")
        self.retries = int(self._number("retries", 3, 0, 20, integer=True))
        self.backoff = self._number("backoff", 1.0, 0.0, 600.0)
        self._slots = threading.Semaphore(int(self._number("concurrency", 2, 1, 256, integer=True)))
        self._client = None
        self._client_lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self.model

    def client(self):
        """The SDK client, built on first use; the key is read from the environment then and kept nowhere else."""
        with self._client_lock:
            if self._client is None:
                import openai

                key = os.environ.get(self.api_key_env) or LOCAL_KEY
                self._client = openai.OpenAI(api_key=key, base_url=self.base_url, timeout=self.timeout,
                                             max_retries=0)  # retries are ours: backoff we control, then fallback
            return self._client

    def complete(self, role: str, messages: list[dict], max_tokens: int, n: int = 1,
                 temperature: float | None = None) -> list[Completion]:
        temperature = self.temperature if temperature is None else temperature
        replies = self._request(messages, max_tokens, n, temperature)
        # servers that ignore ``n`` (transformers serve, some proxies) answer once: draw the rest one by one
        while len(replies) < n:
            try:
                more = self._request(messages, max_tokens, 1, temperature)
            except LLMUnavailable as exc:  # e.g. the call's time ran out: the replies drawn are still good
                logger.debug(f"policy openai: {len(replies)} of {n} samples drawn ({exc})")
                break
            if not more:
                break
            replies += more
        return replies[:n]

    def _request(self, messages: list[dict], max_tokens: int, n: int, temperature: float) -> list[Completion]:
        import openai

        kwargs = {"model": self.model, "messages": messages, "max_tokens": max_tokens,
                  "temperature": temperature}
        if n > 1:
            kwargs["n"] = n
        last = None
        for attempt in range(self.retries + 1):
            if attempt:
                wait = self.backoff * 2 ** (attempt - 1) * (1 + 0.25 * random.random())
                if self.call_seconds() - wait < self.MIN_CALL_SECONDS:
                    raise LLMUnavailable(f"{DEADLINE}: no time left for retry {attempt}/{self.retries} after {last}")
                logger.debug(f"policy openai: retry {attempt}/{self.retries} in {wait:.1f}s after {last}")
                time.sleep(wait)
            try:
                with self._slots:
                    limit = self.call_seconds()  # counted from now: waiting for a slot used time too
                    if limit < self.MIN_CALL_SECONDS:
                        raise LLMUnavailable(f"{DEADLINE}: {max(0.0, limit):.1f}s left once a request slot was free")
                    began = time.perf_counter()
                    response = self.client().chat.completions.create(**kwargs, timeout=limit)
                    seconds = time.perf_counter() - began
            except openai.APITimeoutError as exc:
                if limit < self.timeout:  # the call's deadline, not the policy's own timeout: no time to retry
                    raise LLMUnavailable(f"{DEADLINE}: no reply within the call's {limit:.1f}s") from None
                last = _describe(exc)
                continue
            except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError) as exc:
                last = _describe(exc)
                continue
            except openai.APIStatusError as exc:
                if exc.status_code in (408, 409) or exc.status_code >= 500:
                    last = _describe(exc)
                    continue
                raise LLMUnavailable(_describe(exc)) from None
            return _completions(response, messages, seconds)
        raise LLMUnavailable(f"{last} (after {self.retries + 1} attempts)")


def _completions(response, messages: list[dict], seconds: float) -> list[Completion]:
    choices = [c for c in (response.choices or []) if c.message is not None]
    usage = getattr(response, "usage", None)
    prompt_tokens = getattr(usage, "prompt_tokens", None)
    if prompt_tokens is None:  # a server that reports no usage: estimate (about 4 characters a token)
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in messages) // 4
    completion_tokens = getattr(usage, "completion_tokens", None)
    out = []
    for i, choice in enumerate(choices):
        text = choice.message.content or ""
        if completion_tokens is not None and len(choices) == 1:
            tokens_out = completion_tokens
        else:
            tokens_out = share(completion_tokens, len(choices), i) if completion_tokens is not None \
                else max(1, len(text) // 4)
        out.append(Completion(text=text, tokens_in=share(int(prompt_tokens), len(choices), i), tokens_out=tokens_out,
                              finish_reason=choice.finish_reason, seconds=share(seconds, len(choices), i)))
    return out


def _describe(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    message = str(getattr(exc, "message", None) or exc).splitlines()[0][:300]
    return f"{type(exc).__name__}{f' {status}' if status else ''}: {message}"


def make_openai_policy(options: dict, *, task=None, store=None, registry=None, run_id=None, **_unused) -> OpenAIPolicy:
    return OpenAIPolicy(options, task=task, store=store, registry=registry, run_id=run_id)


@hookimpl
def register_policies(register):
    register("openai", make_openai_policy)
