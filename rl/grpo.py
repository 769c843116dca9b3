"""Step-wise GRPO (trl ``GRPOTrainer`` + a peft LoRA adapter): each prompt is one recorded state, each completion one
action, rewarded by running it on that state's script through the project's executor (rl.step.StepRunner). No
whole-episode rollouts. Writes the adapter, metrics.jsonl, reward_curve.png and rewards.jsonl into the output folder."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from loguru import logger
from pydantic import BaseModel, ConfigDict, Field

from core.errors import UserError
from core.files import folder_atomic
from core.local_llm import native_bf16
from rl.dataset import Step
from rl.reward import REFUSED_STATUSES
from rl.step import StepRunner, prompt_of
from rl.traininglog import TrainingLog

ADAPTER = "adapter"
REWARDS_FILE = "rewards.jsonl"
PLOT = "reward_curve.png"
COMPLETION_CHARS = 400  # how much of each completion rewards.jsonl keeps
MESSAGE_CHARS = 300  # and of the parse error or the run's error tail
MIN_SECONDS = 1.0  # duration weighting counts an action that ran shorter (or not at all) as this long


class GRPOError(UserError):
    """GRPO settings or inputs that cannot train (e.g. vLLM without CUDA, no state fits the prompt length)."""


class GRPOSettings(BaseModel):
    """What one GRPO run does. A step samples ``prompts_per_step`` states and ``num_generations`` actions for each
    (the group whose rewards GRPO compares); ``micro_batch`` completions go through one forward/backward pass (default:
    all of a device's share at once on CUDA, 1 on CPU: there 8 SmolLM2 completions of ~900 tokens in one pass held
    12 GB at the peak, and glibc kept most of it; one at a time held 2.7 GB). ``lora_*`` shape a fresh adapter
    (unused when training goes on from one). ``duration_weighting`` scales each action's advantage by its execution
    time (``duration_weights``). ``bf16`` (autocast) defaults to on where the device computes in it natively
    (``core.local_llm.native_bf16``; on this machine's CPU a step took 98 s instead of 131 s, the same samples and
    a gradient norm within 2%); ``gradient_checkpointing`` to on with CUDA, off on CPU; ``use_vllm`` needs CUDA."""

    model_config = ConfigDict(extra="forbid")

    max_steps: int = Field(20, ge=1)
    prompts_per_step: int = Field(2, ge=1)
    num_generations: int = Field(4, ge=2)
    micro_batch: int | None = Field(None, ge=1)
    learning_rate: float = Field(5e-5, gt=0)
    # transformers' scheduler names; "constant" keeps the step size of a short run from decaying to nothing
    lr_scheduler: Literal["linear", "cosine", "constant"] = "linear"
    beta: float = Field(0.04, ge=0)  # KL coefficient; 0 drops the reference model (and the KL curve)
    temperature: float = Field(0.9, gt=0)
    max_prompt_length: int = Field(1024, ge=16)  # states whose prompt is longer are left out, not cut
    max_completion_length: int = Field(64, ge=1)
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    lora_target_modules: str | list[str] = "all-linear"
    seed: int = 0
    logging_steps: int = Field(1, ge=1)
    duration_weighting: bool = False
    use_vllm: bool = False
    bf16: bool | None = None
    gradient_checkpointing: bool | None = None
    # torch threads on CPU (default: torch's choice, every core). On a machine busy with other work, 1 thread is
    # several times faster: waiting OpenMP threads spin against the other processes.
    cpu_threads: int | None = Field(None, ge=1)

    def for_device(self, cuda: bool) -> GRPOSettings:
        """These settings with the device defaults filled in; GRPOError when they ask for what the device lacks."""
        if self.use_vllm and not cuda:
            raise GRPOError("use_vllm needs a CUDA GPU; on CPU, leave use_vllm off (generation runs in transformers)")
        if self.use_vllm and _missing("vllm"):
            raise GRPOError("use_vllm is on but vllm is not installed; install it with `pip install vllm`")
        if self.bf16 and cuda and not native_bf16("cuda"):
            raise GRPOError("bf16 is on but this GPU has no bfloat16 support; set bf16 off")
        return self.model_copy(update={
            "micro_batch": self.micro_batch or (None if cuda else 1),
            "bf16": native_bf16("cuda" if cuda else "cpu") if self.bf16 is None else self.bf16,
            "gradient_checkpointing": cuda if self.gradient_checkpointing is None else self.gradient_checkpointing})

    def batch_shape(self, processes: int) -> tuple[int, int]:
        """(completions per device per pass, passes per optimizer step) so that one optimizer step consumes exactly
        one generation batch of prompts_per_step × num_generations completions over ``processes`` devices."""
        total = self.prompts_per_step * self.num_generations
        if total % processes:
            raise GRPOError(f"prompts_per_step × num_generations = {total} completions do not split evenly over "
                            f"{processes} processes; change prompts_per_step or num_generations")
        share = total // processes
        micro = self.micro_batch or share
        if share % micro:
            raise GRPOError(f"micro_batch {micro} does not divide the {share} completions each process gets per step")
        return micro, share // micro


def duration_weights(seconds: Sequence[float], floor: float = MIN_SECONDS) -> list[float]:
    """Per action, w_i = max(s_i, floor) / mean_j max(s_j, floor) over the actions of one generation batch (s: the
    execution seconds, the original run's for a cache hit). The trainer multiplies each action's GRPO advantage by
    w_i: long actions count more, the weights average to 1 (the step size is unchanged), and an action that did not
    run (malformed, no-op: 0 s) counts as ``floor`` seconds instead of losing its gradient."""
    clipped = [max(float(s), floor) for s in seconds]
    mean = statistics.fmean(clipped) if clipped else 1.0
    return [s / mean for s in clipped]


def completion_text(completion) -> str:
    """A trl completion as text: conversational completions are lists of messages."""
    if isinstance(completion, list):
        return "".join(m.get("content") or "" for m in completion)
    return completion


class StepReward:
    """trl reward function: runs every completion of a batch on its state (one ``runner.run`` call, so the scripts
    run in parallel) and appends one line per completion to ``rewards.jsonl``. With duration weighting on, keeps the
    batch's ``duration_weights`` for the trainer to scale advantages with.

    Under ``accelerate launch`` each process scores its share of the batch, but only the main one runs scripts: it
    gathers every process's completions, runs them all through its executor (one cache, one run folder, no two
    processes running the same script) and logs them, then sends each process its rewards; the others' ``runner``
    is None. ``processes``/``process``: the number of processes and this one's index."""

    __name__ = "step_reward"  # trl names the reward's metrics after it

    def __init__(self, runner: StepRunner | None, log_path: Path, duration_weighting: bool = False,
                 process: int = 0, processes: int = 1):
        self.runner = runner
        self.log_path = log_path
        self.duration_weighting = duration_weighting
        self.process = process
        self.processes = processes
        self.weights: list[float] | None = None

    def __call__(self, prompts, completions, step, trainer_state=None, log_metric=None, **_) -> list[float]:
        mine = [(text, completion_text(c)) for text, c in zip(step, completions)]
        shares = _gathered(mine) if self.processes > 1 else [mine]
        global_step = (trainer_state.global_step if trainer_state is not None else 0) + 1
        started = time.monotonic()
        scored = self._score(shares, global_step) if self.process == 0 else None
        if self.processes > 1:
            scored = _from_main(scored)
        wall = time.monotonic() - started
        results, weights = scored
        first = sum(len(share) for share in shares[:self.process])
        results = results[first:first + len(mine)]
        self.weights = None if weights is None else weights[first:first + len(mine)]
        if log_metric is not None:
            log_metric("execution/wall_seconds", wall)
            log_metric("execution/action_seconds", statistics.fmean(r.seconds for r in results))
            log_metric("execution/ran_fraction", sum(r.status not in ("malformed", *REFUSED_STATUSES) for r in results)
                       / len(results))
        return [r.reward for r in results]

    def _score(self, shares: list[list[tuple[str, str]]], global_step: int) -> tuple[list, list[float] | None]:
        """(the results of every process's (state JSON, completion) pairs in order, their duration weights or
        None), the pairs run and logged in one go."""
        parsed = {text: Step.model_validate_json(text) for share in shares for text, _ in share}
        pairs = [(process, parsed[text], completion) for process, share in enumerate(shares)
                 for text, completion in share]
        results = self.runner.run([s for _, s, _ in pairs], [c for _, _, c in pairs])
        # over the whole generation batch, so the weights average to 1 across processes
        weights = duration_weights([r.seconds for r in results]) if self.duration_weighting else None
        lines = []
        for i, ((process, s, text), r) in enumerate(zip(pairs, results)):
            line = {"step": global_step, "process": process, "step_id": s.step_id, "task": s.task,
                    "reward": r.reward, "status": r.status, "score": r.score, "prev_score": r.prev_score,
                    "gain": r.gain, "seconds": r.seconds, "cached": r.cached, "stages": r.stages, "plan": r.plan,
                    "message": r.message[-MESSAGE_CHARS:], "completion": text[:COMPLETION_CHARS]}
            if weights is not None:
                line["weight"] = round(weights[i], 4)
            lines.append(json.dumps(line) + "\n")
        with self.log_path.open("a") as f:
            f.write("".join(lines))
        return results, weights


def _gathered(mine: list) -> list[list]:
    """Every process's ``mine``, in process order, on every process."""
    from accelerate.utils import gather_object

    return gather_object([mine])


def _from_main(value):
    """The main process's ``value`` on every process."""
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value], from_process=0)[0]


def train_grpo(base_model: str | Path, adapter: str | Path | None, steps: Sequence[Step],
               runner: StepRunner | None, fmt: str, out_dir: str | Path, settings: GRPOSettings | None = None) -> Path:
    """Train a LoRA adapter on ``base_model`` with GRPO over the states ``steps`` and return its folder
    (``<out_dir>/adapter``, loadable by ``core.local_llm.load_causal_lm(base_model, adapter=...)``).

    ``adapter``: an SFT adapter to go on from (loaded trainable; the reference model is a frozen copy of it), or None
    for a fresh LoRA (the reference is the base model). The adapter is written into a temporary sibling folder and
    renamed, so a killed run leaves the previous adapter or none, never half of one.

    Under ``accelerate launch`` every process calls this; only the main one needs a ``runner`` (the others pass None:
    it runs every process's reward scripts, see ``StepReward``) and only it writes into ``out_dir``."""
    import torch
    from accelerate import PartialState

    if runner is not None and fmt != runner.fmt:
        raise ValueError(f"the runner parses format {runner.fmt!r}, the prompts are asked in {fmt!r}")
    cuda = torch.cuda.is_available()
    settings = (settings or GRPOSettings()).for_device(cuda)
    out_dir = Path(out_dir)
    state = PartialState(cpu=not cuda)  # on CPU, processes of `accelerate launch` join with gloo
    micro, accumulation = settings.batch_shape(state.num_processes)
    model, tokenizer = _policy(base_model, adapter, settings, cuda)
    dataset = _prompts(steps, fmt, tokenizer, settings)
    rewards_log = out_dir / REWARDS_FILE
    if state.is_main_process:  # the one process that writes into out_dir (and runs the reward scripts)
        out_dir.mkdir(parents=True, exist_ok=True)
        rewards_log.write_text("")
    state.wait_for_everyone()
    reward_fn = StepReward(runner, rewards_log, settings.duration_weighting, state.process_index,
                           state.num_processes)
    trainer = _trainer_class(settings.duration_weighting)(
        model=model, reward_funcs=reward_fn, args=_config(settings, out_dir, micro, accumulation, cuda),
        train_dataset=dataset, processing_class=tokenizer, callbacks=[TrainingLog(out_dir, PLOT)],
        peft_config=None if adapter is not None else _lora(settings))
    logger.info(f"GRPO: {len(dataset)} states, {settings.max_steps} steps of {settings.prompts_per_step} states × "
                f"{settings.num_generations} actions, on {'CUDA' if cuda else 'CPU'}"
                f"{' with vLLM' if settings.use_vllm else ''}, {state.num_processes} process(es); log in {out_dir}")
    with _torch_threads(None if cuda else settings.cpu_threads):
        trainer.train()
    dest = out_dir / ADAPTER
    # asked of every process: under DeepSpeed ZeRO-3 each holds a shard, and gathering them takes all of them
    weights = trainer.accelerator.get_state_dict(trainer.model)
    if state.is_main_process:
        _save_adapter(trainer.accelerator.unwrap_model(trainer.model), weights, dest)
        (out_dir / "grpo.json").write_text(json.dumps(
            {"base_model": str(base_model), "start_adapter": None if adapter is None else str(adapter),
             "format": fmt, "states": len(dataset), "processes": state.num_processes,
             "settings": settings.model_dump()}, indent=2))
    state.wait_for_everyone()
    return dest


def _policy(base_model, adapter, settings: GRPOSettings, cuda: bool):
    """(the model to train, its tokenizer): the base in the training dtype, on CPU (the trainer places it), with the
    SFT adapter loaded trainable when one is given."""
    import torch

    from core.local_llm import LocalModelError, load_causal_lm

    dtype = torch.bfloat16 if cuda and settings.bf16 else torch.float32
    model, tokenizer = load_causal_lm(base_model, device="cpu", dtype=dtype)
    if adapter is not None:
        if not (Path(adapter) / "adapter_config.json").is_file():
            raise LocalModelError(f"adapter {str(adapter)!r}: not a PEFT adapter folder (no adapter_config.json)")
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter), is_trainable=True)
    tokenizer.padding_side = "left"  # generation continues each prompt from its last token
    return model, tokenizer


def _prompts(steps: Sequence[Step], fmt: str, tokenizer, settings: GRPOSettings):
    """The trl dataset: one row per state whose prompt fits max_prompt_length (conversational ``prompt``, the state
    as JSON in ``step`` for the reward function, ``step_id`` and ``task`` for reading)."""
    from datasets import Dataset

    rows, too_long = [], 0
    for s in steps:
        prompt = prompt_of(s, fmt)
        length = len(tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                                   return_dict=True)["input_ids"])
        if length > settings.max_prompt_length:
            too_long += 1
            continue
        rows.append({"prompt": prompt, "step": s.model_dump_json(), "step_id": s.step_id, "task": s.task})
    if too_long:
        logger.warning(f"GRPO: {too_long} of {len(steps)} states left out: their prompt is longer than "
                       f"max_prompt_length {settings.max_prompt_length} tokens")
    if not rows:
        raise GRPOError(f"no state to train on: {len(steps)} given, none with a prompt within max_prompt_length "
                        f"{settings.max_prompt_length} tokens")
    if len(rows) < settings.prompts_per_step:
        raise GRPOError(f"prompts_per_step {settings.prompts_per_step} is more than the {len(rows)} states to train "
                        f"on; lower it")
    return Dataset.from_list(rows)


def _config(settings: GRPOSettings, out_dir: Path, micro: int, accumulation: int, cuda: bool):
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=str(out_dir), max_steps=settings.max_steps, per_device_train_batch_size=micro,
        gradient_accumulation_steps=accumulation, num_generations=settings.num_generations,
        learning_rate=settings.learning_rate, lr_scheduler_type=settings.lr_scheduler, beta=settings.beta,
        temperature=settings.temperature,
        max_completion_length=settings.max_completion_length, seed=settings.seed,
        logging_steps=settings.logging_steps, bf16=settings.bf16,
        activation_checkpointing=settings.gradient_checkpointing, use_vllm=settings.use_vllm, vllm_mode="colocate",
        use_cpu=not cuda, report_to="none", save_strategy="no", remove_unused_columns=False,
        dataloader_num_workers=0, log_completions=False)


def _lora(settings: GRPOSettings):
    from peft import LoraConfig

    return LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                      target_modules=settings.lora_target_modules, task_type="CAUSAL_LM")


def _trainer_class(duration_weighting: bool):
    """GRPOTrainer, or with duration weighting a subclass that scales each completion's advantage by its weight (the
    policy-gradient form of Yang et al.'s duration-aware updates: the reward itself is left alone, so a slow action
    is not made more attractive, only its update counts more)."""
    import torch
    from trl import GRPOTrainer

    if not duration_weighting:
        return GRPOTrainer

    class DurationWeightedGRPOTrainer(GRPOTrainer):
        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            weights = self.reward_funcs[0].weights  # this process's completions, in the order it scored them
            out["advantages"] = out["advantages"] * torch.tensor(weights, dtype=out["advantages"].dtype,
                                                                 device=out["advantages"].device)
            return out

    return DurationWeightedGRPOTrainer


def _save_adapter(model, weights: dict, dest: Path) -> None:
    """Only the trained adapter (trl adds a frozen ``ref`` copy beside it), from ``weights`` (the whole model's state
    dict), written whole or not at all."""
    with folder_atomic(dest) as tmp:
        model.save_pretrained(str(tmp), state_dict=weights, selected_adapters=["default"])


@contextmanager
def _torch_threads(count: int | None):
    import torch

    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None

