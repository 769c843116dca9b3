"""Supervised fine-tuning on expert demonstrations (rl.experts rows): a LoRA adapter trained with trl's SFTTrainer and
peft, loss on the completion only. Full scale on CUDA (bf16, gradient checkpointing), tiny scale on CPU."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from loguru import logger
from pydantic import BaseModel, ConfigDict, Field

from core.errors import UserError
from core.files import folder_atomic
from core.local_llm import default_device, load_causal_lm, native_bf16

ADAPTER_FILE = "adapter_config.json"


class SFTError(UserError):
    """Expert examples or settings that cannot be trained on."""


def _on_cuda() -> bool:
    return default_device() == "cuda"


class SFTSettings(BaseModel):
    """How to train. ``max_steps`` (when set) overrides ``epochs``. ``target_modules``: the layers LoRA adapts (a list
    of names, or peft's "all-linear"). ``max_length``: examples with more tokens are left out (truncating them would
    cut the completion, the only part trained on). ``bf16``: autocast to bfloat16, on where the device computes in it
    natively. ``gradient_checkpointing``: on with CUDA (memory), off on CPU (it recomputes the forward: +20% time).
    ``threads``: the CPU threads torch may use while training (default 1; see ``train_sft``)."""

    model_config = ConfigDict(extra="forbid")

    max_steps: int | None = Field(default=None, ge=1)
    epochs: float = Field(default=1.0, gt=0)
    learning_rate: float = Field(default=2e-4, gt=0)
    batch_size: int = Field(default=1, ge=1)
    grad_accum: int = Field(default=1, ge=1)
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: list[str] | str = "all-linear"
    max_length: int = Field(default=4096, ge=16)
    seed: int = 0
    logging_steps: int = Field(default=1, ge=1)
    bf16: bool = Field(default_factory=native_bf16)
    gradient_checkpointing: bool = Field(default_factory=_on_cuda)
    threads: int = Field(default=1, ge=1)


def train_sft(base_model: str | Path, examples: Sequence[dict], out_dir: str | Path,
              settings: SFTSettings | None = None, callbacks: Sequence = ()) -> Path:
    """Train a LoRA adapter of ``base_model`` (a model folder or a cached model id) on ``examples`` (rows with chat
    ``prompt`` and ``completion`` messages) and write it, with the tokenizer, to ``out_dir``; returns ``out_dir``.

    Training happens in a temporary folder beside ``out_dir`` that is renamed into place at the end, so a killed run
    leaves the previous adapter (or nothing) there, never half of one. ``callbacks``: transformers TrainerCallbacks.

    torch runs with ``settings.threads`` CPU threads meanwhile (restored after). With torch's default, one thread per
    core, a step on cores that other processes also use (the executor's scripts, other jobs) waits at every operation
    for a descheduled thread: on 2 busy shared cores, a 650-token SmolLM2 step took 42 s with 2 threads and 5-8 s
    with 1.

    Under ``accelerate launch`` every process calls this with the same examples (each trains on its share of them)
    and only the main one writes: the adapter, and its scratch folder beside it (the others' are in the system's temp
    folder)."""
    import torch
    from accelerate import PartialState

    settings = settings or SFTSettings()
    out_dir = Path(out_dir)
    if out_dir.exists() and not (out_dir / ADAPTER_FILE).is_file():
        raise SFTError(f"{out_dir}: exists and is not an adapter folder; choose another output folder")
    state = PartialState(cpu=not _on_cuda())  # on CPU, processes of `accelerate launch` join with gloo
    model, tokenizer = load_causal_lm(base_model)
    rows = fitting_rows(examples, tokenizer, settings.max_length)
    if state.is_main_process:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-train-",
                                 dir=out_dir.parent if state.is_main_process else None))
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        trainer = _trainer(model, tokenizer, rows, work, settings, callbacks)
        trainer.train()
        # asked of every process: under DeepSpeed ZeRO-3 each holds a shard, and gathering them takes all of them
        weights = trainer.accelerator.get_state_dict(trainer.model)
        if state.is_main_process:
            with folder_atomic(out_dir) as adapter:
                trainer.accelerator.unwrap_model(trainer.model).save_pretrained(adapter, state_dict=weights)
                tokenizer.save_pretrained(adapter)
    finally:
        torch.set_num_threads(threads)
        shutil.rmtree(work, ignore_errors=True)
    state.wait_for_everyone()  # no process goes on (e.g. to GRPO from this adapter) before it is there
    return out_dir


def fitting_rows(examples: Sequence[dict], tokenizer, max_length: int) -> list[dict]:
    """The examples' prompt and completion, leaving out those longer than ``max_length`` tokens (with a warning);
    SFTError when none is left."""
    if not examples:
        raise SFTError("no expert examples to train on (rl.experts.expert_examples returned none that ran)")
    rows, too_long = [], 0
    for ex in examples:
        if not ex.get("prompt") or not ex.get("completion"):
            raise SFTError(f"expert example {ex.get('step_id', '?')}: needs chat 'prompt' and 'completion' messages")
        tokens = tokenizer.apply_chat_template(ex["prompt"] + ex["completion"], tokenize=True, return_dict=True)
        if len(tokens["input_ids"]) > max_length:
            too_long += 1
            continue
        rows.append({"prompt": ex["prompt"], "completion": ex["completion"]})
    if too_long:
        logger.warning(f"sft: {too_long} of {len(examples)} examples are longer than max_length={max_length} tokens "
                       f"and are left out")
    if not rows:
        raise SFTError(f"every expert example is longer than max_length={max_length} tokens; raise max_length")
    return rows


def _trainer(model, tokenizer, rows: list[dict], output_dir: Path, s: SFTSettings, callbacks: Sequence):
    from dataclasses import fields

    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    # transformers 5 renamed the option (the old name still works, with a warning); 4.x knows only the old one
    checkpointing = ("activation_checkpointing" if "activation_checkpointing" in {f.name for f in fields(SFTConfig)}
                     else "gradient_checkpointing")
    config = SFTConfig(
        output_dir=str(output_dir), max_steps=s.max_steps or -1, num_train_epochs=s.epochs,
        learning_rate=s.learning_rate, per_device_train_batch_size=s.batch_size,
        gradient_accumulation_steps=s.grad_accum, max_length=s.max_length, seed=s.seed, data_seed=s.seed,
        logging_steps=s.logging_steps, bf16=s.bf16, use_cpu=not _on_cuda(), completion_only_loss=True,
        packing=False, report_to="none", save_strategy="no", push_to_hub=False,
        **{checkpointing: s.gradient_checkpointing},
    )
    lora = LoraConfig(r=s.lora_r, lora_alpha=s.lora_alpha, lora_dropout=s.lora_dropout,
                      target_modules=s.target_modules, task_type="CAUSAL_LM")
    return SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                      peft_config=lora, callbacks=list(callbacks))
