"""What each block of a heuristic script does, as data: one pydantic spec per block kind.

A script's blocks carry their spec as JSON on their marker line, so any block can be read back, changed and
re-rendered on its own (see ``render``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Imputation = Literal["median", "mean", "most_frequent", "constant", "none"]
Encoding = Literal["ordinal", "onehot", "target", "count"]
Scaling = Literal["none", "standard", "robust", "quantile"]
TextMode = Literal["drop", "stats", "hash", "tfidf"]
TargetTransform = Literal["none", "standard", "log1p"]
Output = Literal["label", "positive", "wide", "value", "multi"]  # multi: one column per target
Calibration = Literal["none", "auto", "sigmoid", "isotonic"]
ImageColour = Literal["rgb", "grey", "contrast"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoadSpec(_Spec):
    """load_data: the raw frames, the target (class codes for classification) and the column roles.

    Column roles come from the task context when the block is rendered; the spec keeps only what a policy changes.
    """

    joins: list[str] = Field(default_factory=list)  # extra CSVs in ./input joined on a column they share with train
    coerce_numeric: bool = True  # numeric columns parsed with errors="coerce" (a stray string becomes a gap)


class ImageSpec(_Spec):
    """The image step of preprocess: each row's image read with Pillow into numeric columns (see ``space.images``).

    Stateless: every value comes from the row's own image, nothing is fitted, so no row leaks into another's features.
    """

    side: int = Field(16, ge=4, le=64)  # the image downscaled to side x side pixels
    colour: ImageColour = "grey"  # rgb: three channels; grey: luminance; contrast: each pixel's distance from the
    #                               image's median colour (one channel: the shape, whatever the colours)
    standardise: bool = False  # each image's channels centred and scaled by their own mean and std (lighting removed)
    histogram_bins: int = Field(0, ge=0, le=64)  # per RGB channel, the share of pixels in each intensity bin; 0: off


class PreprocessSpec(_Spec):
    """preprocess: feature engineering fitted on the training rows, then imputation, encoding and scaling."""

    impute: Imputation = "median"
    encoding: Encoding = "ordinal"
    scaling: Scaling = "none"
    missing_indicators: bool = False  # a 0/1 column per numeric column with gaps in the training rows
    log1p_skewed: bool = False  # log1p of non-negative numeric columns with skew > 1 in the training rows
    pair_top: int = 0  # products and ratios of every pair among the k numeric columns most related to the target
    pair_differences: bool = False  # with pair_top: the pairs' differences a - b too
    group_stats: int = Field(0, ge=0, le=3)  # per category of the k categorical columns most related to the target:
    #                                          mean and std of the 3 numeric columns most related to it (training rows)
    splines: bool = False  # cubic B-spline bases of the numeric columns beside them (linear models: smooth curves)
    count_features: bool = False  # how often each category occurs in the training rows, as an extra column
    as_categories: list[str] = Field(default_factory=list)  # integer columns read as codes (categories), not
    #                                                         quantities: an interviewer's or a hospital's number
    datetime_parts: bool = True  # year, month, day, weekday (and hour) of date columns; off: dates are dropped
    text: TextMode = "hash"  # free-text columns: dropped, length/word counts, counts plus 32 hashed token columns, or
    #                          TF-IDF n-grams (a sparse matrix: see ``space.text`` for the models that read it)
    tfidf_chars: bool = True  # tfidf: character 2-5-grams beside the word 1-2-grams
    tfidf_features: int = Field(20_000, ge=1_000, le=200_000)  # tfidf: at most this many n-grams of each kind
    images: ImageSpec | None = None  # the rows' images as pixel (and histogram) columns; None: no image step


class TuneSpec(_Spec):
    """An Optuna TPE study over the member's main parameters, cross-validated on the training rows only."""

    seconds: float = Field(30.0, gt=0, le=3600)  # the study's time slice (Optuna's timeout)
    trials: int = Field(200, ge=1, le=5000)  # at most this many trials, whichever ends first
    folds: int = Field(3, ge=2, le=10)  # cross-validation folds of the training rows per trial
    max_rows: int = Field(20_000, ge=100)  # a random subset of the training rows for the study on larger data


class MemberSpec(_Spec):
    """One model of the (possibly blended) model block."""

    estimator: str  # import path, "module.Class"
    params: dict[str, object] = Field(default_factory=dict)  # random_state is added from the seed when accepted
    target: TargetTransform = "none"  # regression: fit on a transformed target, predictions mapped back
    scale: bool = False  # own StandardScaler (when the preprocess block does not scale)
    impute: bool = False  # own median imputer (when the preprocess block leaves gaps)
    weight: float = 1.0
    tune: TuneSpec | None = None  # params chosen by an Optuna study in the script, starting from ``params``


class ModelSpec(_Spec):
    """model: the members of the blend; predictions are their weighted mean (probabilities or values)."""

    members: list[MemberSpec] = Field(min_length=1)


class TrainSpec(_Spec):
    """train: a plain fit, or k-fold bagging (one model per fold, averaged); optionally early stopping."""

    folds: int = Field(1, ge=1, le=10)  # 1: every member fitted once on all training rows
    early_stopping: bool = False  # boosting rounds chosen on training rows held out (the fold, or an inner split)
    stop_fraction: float = Field(0.15, gt=0, lt=0.5)
    patience: int = Field(50, ge=5)
    calibration: Calibration = "none"  # classification: the blend wrapped in CalibratedClassifierCV (cv on training
    #                                    rows); auto: isotonic from 1,000 training rows, sigmoid below


class PredictSpec(_Spec):
    """predict: the blend's predictions in the sample's format, scored with the task metric, written to CSV."""

    metric: str
    output: Output


class ImportsSpec(_Spec):
    """imports: the libraries every block may use (block-specific imports live in their blocks)."""


SPEC_TYPES: dict[str, type[_Spec]] = {
    "imports": ImportsSpec, "load_data": LoadSpec, "preprocess": PreprocessSpec, "model": ModelSpec,
    "train": TrainSpec, "predict": PredictSpec,
}
KINDS = tuple(SPEC_TYPES)


class ScriptSpec(_Spec):
    """Every block's spec: what ``render.render_script`` turns into a complete script."""

    title: str = "solution"
    imports: ImportsSpec = Field(default_factory=ImportsSpec)
    load_data: LoadSpec = Field(default_factory=LoadSpec)
    preprocess: PreprocessSpec = Field(default_factory=PreprocessSpec)
    model: ModelSpec
    train: TrainSpec = Field(default_factory=TrainSpec)
    predict: PredictSpec

    def block(self, kind: str) -> _Spec:
        return getattr(self, kind)
