"""Model cards: what retrieval hands to the draft node, whichever backend (catalogue, web, history) found them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

TaskType = Literal["classification", "regression"]


class CardQuery(BaseModel):
    """What a search backend knows about the task when it looks for models."""

    task_type: TaskType
    goal: str = ""
    metric: str = ""
    n_rows: int = 0
    n_features: int = 0
    has_categorical: bool = False
    has_missing: bool = False
    modality: str = "tabular"  # "tabular" | "text" | "image" | "mixed" (core.assets.modality)
    text_columns: int = 0  # how many of the feature columns hold free text
    has_images: bool = False  # each row has an image file (image and some mixed tasks)


class Estimator(BaseModel):
    """How to build the model in code: an importable class per task type and its starting hyperparameters."""

    classification: str | None = None  # "module.Class"
    regression: str | None = None
    params: dict[str, object] = Field(default_factory=dict)
    needs_scaling: bool = False  # distance or gradient based models want standardised inputs
    handles_missing: bool = False  # accepts NaN without imputation
    pip: list[str] = Field(default_factory=list)  # distributions the example code imports


class ModelCard(BaseModel):
    """One candidate model: its name, why it fits, and example code a policy adapts to the task."""

    name: str
    family: str
    task_types: list[TaskType]
    why: str
    example_code: str
    estimator: Estimator | None = None  # None for cards from the web that only carry text and code
    source: str = "catalogue"
    score_hint: float = 0.0  # backend's own ranking signal (higher first)
