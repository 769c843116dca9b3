"""An example third-party mlestar plugin: a metric, a search backend and a policy, registered through the hooks."""

from __future__ import annotations

from pathlib import Path

from sklearn.metrics import max_error

from core.cards import CardQuery, ModelCard
from core.hookspecs import hookimpl
from core.metrics import Metric

MAX_ERROR = Metric("max_error", lambda y_true, y_pred: float(max_error(y_true, y_pred)), "minimize", "regression",
                   description="largest absolute error of any one prediction")

MEDIAN_CODE = """\
import pandas as pd

train = pd.read_csv("input/train.csv")
submission = pd.read_csv("input/sample_submission.csv")
target = submission.columns[-1]
median = train[target].median()
print("Final Validation Performance:", float((train[target] - median).abs().max()))
submission[target] = median
submission.to_csv("submission.csv", index=False)
"""


class ExampleCards:
    """A search backend with one card: predict the median (a baseline any task can start from)."""

    def __init__(self, options: dict | None = None, *, cache_dir: Path | None = None):
        self.options = dict(options or {})
        self.cache_dir = cache_dir

    def search(self, query: CardQuery, limit: int) -> list[ModelCard]:
        card = ModelCard(name="median_baseline", family="baseline", task_types=[query.task_type],
                         why="predicts the training median; a floor every real model must beat",
                         example_code=MEDIAN_CODE, source="example")
        return [card][:limit]


class ExamplePolicy:
    """A policy that only remembers how it was built (enough to show the factory is reached)."""

    def __init__(self, options: dict | None = None, *, task=None, **_unused):
        self.options = dict(options or {})
        self.task = task


@hookimpl
def register_metrics(register):
    register(MAX_ERROR)


@hookimpl
def register_search_backends(register):
    register("example_cards", ExampleCards)


@hookimpl
def register_policies(register):
    register("example_policy", ExamplePolicy)
