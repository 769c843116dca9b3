"""An example third-party step source: the states on model blocks of the run stores under an archive folder (a
curriculum that only tunes models), registered through the ``register_step_sources`` hook."""

from __future__ import annotations

from core.errors import UserError
from core.hookspecs import hookimpl
from rl.dataset import build_dataset


def model_block_steps(options: dict) -> list:
    if "archive" not in options:
        raise UserError("step source 'model_blocks': option 'archive' (a folder holding run stores) is required")
    splits = build_dataset([options["archive"]])
    return sorted((s for split in splits.values() for s in split if s.block_kind == "model"), key=lambda s: s.step_id)


@hookimpl
def register_step_sources(register):
    register("model_blocks", model_block_steps)
