"""The schema of train.yaml (what ``python -m core.train`` reads): base model, action format, output folder, where the
experience comes from, executor settings, SFT and GRPO settings, seed. Paths resolve against the file's folder."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.errors import UserError
from core.task import PluginChoice, read_model
from rl.grpo import GRPOSettings
from rl.sft import SFTSettings


class TrainError(UserError):
    """train.yaml (or a file it names) is invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSection(_Strict):
    stores: list[Path] = Field(default_factory=list, description="runs.sqlite files, or folders holding them")
    dataset: Path | None = Field(None, description="a saved step dataset folder (instead of building one)")
    eval_tasks: list[str] | None = Field(None, description="tasks held out for evaluation (default: ~1/4, by hash)")
    max_states: int | None = Field(None, ge=1, description="train on at most this many states, one per distinct prompt, spread over the tasks (default: every distinct prompt)")

    @model_validator(mode="after")
    def _one_source(self):
        if not self.stores and self.dataset is None:
            raise ValueError("give data.stores (run stores to build the step dataset from) or data.dataset")
        return self


class CollectSection(_Strict):
    suite: Path = Field(Path("../bench/suite.yaml"), description="the task suite to run the pipeline over")
    out: Path | None = Field(None, description="where the runs go (default: <output>/experience)")
    budget: float | None = Field(None, gt=0, description="seconds per run (default: the suite's)")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    policies: list[PluginChoice] = Field(default_factory=lambda: [PluginChoice(name="heuristic")], min_length=1)
    tasks: list[str] | None = None
    executor: PluginChoice | None = Field(None, description="where the runs' scripts run, e.g. {name: ray, options: "
                                          "{address: auto}} (default: each task.yaml's own executor)")


class SFTSection(SFTSettings):
    enabled: bool = True
    per_state: int = Field(3, ge=1, description="diverse expert actions kept per training state")
    pool: int = Field(12, ge=1, description="candidate actions per state that diversity is chosen from")
    max_states: int | None = Field(None, ge=1, description="expert actions for at most this many of the training "
                                   "states (each costs per_state runs), the first in data.max_states' order; "
                                   "GRPO still samples from all of them")
    experts: list[PluginChoice] = Field(default_factory=list,
                                        description="LLM policies (e.g. openai) adding candidates besides the catalogue")


class RLSection(GRPOSettings):
    enabled: bool = True
    iterations: int = Field(1, ge=1, description="on-policy rounds: after the first GRPO run, each further round "
                            "collects experience with the current adapter on the training tasks, adds its steps to "
                            "the dataset and trains GRPO again from that adapter")


class TrainFile(_Strict):
    base_model: Path | None = Field(None, description="a model folder or cached model id (default: SmolLM2-135M)")
    action_format: Literal["structured", "free"] = "structured"
    output: Path = Path("out/train")
    seed: int = 0
    data: DataSection
    collect: CollectSection = Field(default_factory=CollectSection)
    executor: PluginChoice = Field(default_factory=lambda: PluginChoice(name="local", options={"workers": 2}))
    timeout: float | None = Field(60, gt=0, description="seconds one reward script may run (capped by the state's)")
    sft: SFTSection = Field(default_factory=SFTSection)
    rl: RLSection = Field(default_factory=RLSection)


def load_train_file(path: str | Path, *, need_data: bool = True) -> TrainFile:
    """Parse and check train.yaml, with its relative paths resolved against its folder; ``need_data``: the stores or
    dataset it names must exist (not yet when experience is being collected)."""
    where = str(path)
    spec = read_model(path, TrainFile, TrainError, "a train.yaml (see examples/train/train.yaml)")
    base = Path(path).resolve().parent

    def resolve(p: Path | None) -> Path | None:
        return None if p is None else (p if p.is_absolute() else (base / p).resolve())

    data = spec.data.model_copy(update={"stores": [resolve(p) for p in spec.data.stores],
                                        "dataset": resolve(spec.data.dataset)})
    for i, store in enumerate(data.stores if need_data else []):
        if not store.exists():
            raise TrainError(f"{where}: data.stores.{i}: {store} does not exist; run `python -m core.train collect "
                             f"{where}` first, or point it at run stores")
    if need_data and data.dataset is not None and not (data.dataset / "train.jsonl").is_file():
        raise TrainError(f"{where}: data.dataset: {data.dataset} holds no step dataset (train.jsonl); build one with "
                         f"`python -m core.train dataset {where}`")
    base_model = spec.base_model
    if base_model is not None and (base / base_model).exists():
        base_model = resolve(base_model)
    collect = spec.collect.model_copy(update={"suite": resolve(spec.collect.suite), "out": resolve(spec.collect.out)})
    return spec.model_copy(update={"data": data, "output": resolve(spec.output), "base_model": base_model,
                                   "collect": collect})
