"""From a model card to a script spec adapted to the task, and from two specs to a blend (the merger)."""

from __future__ import annotations

from core.cards import ModelCard
from core.policy import ColumnInfo, TaskContext
from space import families, images, text
from space.specs import (
    LoadSpec,
    MemberSpec,
    ModelSpec,
    PreprocessSpec,
    ScriptSpec,
    TrainSpec,
)
from space.render import predict_spec, render_script

# Below this many training rows a linear model's draft gets spline bases of its numeric columns: on few rows,
# smooth curves generalise better than trees, which overfit.
SMALL_DATA_ROWS = 2000
# Set by the script itself (random_state from SEED) or left to the executor's thread budget.
DROPPED_PARAMS = {"random_state", "n_jobs", "nthread", "num_threads", "thread_count"}


def clean_params(path: str, params: dict) -> dict:
    """Card or family params ready for a member: seeds and thread counts removed, probabilities switched on."""
    out = {k: v for k, v in params.items() if k not in DROPPED_PARAMS}
    out.pop("probability", None)
    if families.names_param(path, "probability"):
        out["probability"] = True  # SVC: soft probabilities for blending and for probability metrics
    return out


def default_target(ctx: TaskContext, path: str, scaled_family: bool) -> str:
    """Regression targets: log1p for RMSLE (the metric lives on that scale), standardised for scale-sensitive
    models (SVR's epsilon, a network's initialisation), untouched otherwise."""
    if ctx.task_type != "regression":
        return "none"
    if ctx.metric == "rmsle":
        return "log1p"
    return "standard" if scaled_family else "none"


def make_member(ctx: TaskContext, path: str, params: dict, preprocess: PreprocessSpec | None, *,
                needs_scaling: bool | None = None, handles_missing: bool | None = None) -> MemberSpec:
    """A member whose inputs are made right for it: its own scaler or imputer when the preprocess block (None:
    unknown, e.g. written by an LLM) does not provide them, and its loss the metric's (``families.metric_params``;
    params given explicitly win)."""
    scaled = families.needs_scaling(path) if needs_scaling is None else needs_scaling
    nan_ok = families.handles_missing(path) if handles_missing is None else handles_missing
    return MemberSpec(
        estimator=path, params=clean_params(path, {**families.metric_params(ctx, path), **params}),
        target=default_target(ctx, path, scaled),
        scale=scaled and (preprocess is None or preprocess.scaling == "none"),
        impute=not nan_ok and (preprocess is None or preprocess.impute == "none"),
    )


def starting_params(ctx: TaskContext, family: families.Family | None, params: dict,
                    preprocess: PreprocessSpec | None) -> dict:
    """``params`` with the family's settings for TF-IDF features overlaid when the preprocess block makes them."""
    if family is None or not family.sparse_params or not text.sparse_features(ctx, preprocess):
        return dict(params)
    binary = ctx.task_type == "classification" and len(ctx.classes) <= 2 and "binary" in family.sparse_params
    return {**params, **family.sparse_params.get("binary" if binary else ctx.task_type, {})}


def family_member(ctx: TaskContext, family: families.Family, preprocess: PreprocessSpec | None) -> MemberSpec:
    return make_member(ctx, family.path(ctx.task_type), starting_params(ctx, family, family.defaults, preprocess),
                       preprocess)


def text_mode(ctx: TaskContext, family: families.Family | None) -> str:
    """TF-IDF for text and mixed tasks when the model reads a sparse matrix; today's hashed tokens otherwise (a
    tabular task's long-text column, a model that needs dense inputs)."""
    if ctx.modality in text.TEXT_TASKS and text.has_text(ctx) and family is not None and family.sparse_ok:
        return "tfidf"
    return "hash"


def initial_spec(ctx: TaskContext, card: ModelCard) -> ScriptSpec | None:
    """The card's estimator with inputs prepared for it; None for cards without an estimator or this task type, and
    for image models on a task without images."""
    estimator = card.estimator
    if estimator is None:
        return None
    path = estimator.classification if ctx.task_type == "classification" else estimator.regression
    if not path:
        return None
    family = families.family_of(path)
    if family is not None and family.images and ctx.images is None:  # a CNN needs the image step's pixels
        return None
    one_hot = family.one_hot if family else estimator.needs_scaling
    mode = text_mode(ctx, family)
    boosted_on_text = mode == "tfidf" and family is not None and family.early_stopping
    preprocess = PreprocessSpec(
        impute="none" if estimator.handles_missing else "median",
        encoding="onehot" if one_hot else "ordinal",
        # beside TF-IDF features the numeric columns are always standardised (trees split them all the same), so
        # a linear model added later needs no scaler of its own: one would centre the sparse matrix, and fail
        scaling="standard" if estimator.needs_scaling or mode == "tfidf" else "none",
        text=mode,
        tfidf_features=text.TREE_FEATURES if boosted_on_text else PreprocessSpec().tfidf_features,
        splines=bool(family and family.name == "linear" and ctx.n_train < SMALL_DATA_ROWS and not ctx.images),
        images=images.draft_spec(ctx, path),
    )
    member = make_member(ctx, path, starting_params(ctx, family, estimator.params, preprocess), preprocess,
                         needs_scaling=estimator.needs_scaling, handles_missing=estimator.handles_missing)
    if not text.fits(ctx, member, preprocess):
        return None  # naive Bayes on anything but text alone: its inputs would include negative values
    if (preprocess.images is not None and not images.scripted(path)) or boosted_on_text:
        # hundreds of pixel columns and one tree per class each round: half the rounds at twice the rate keeps a
        # search run of a ten-class image task inside its timeout (500 rounds took 43 s a fold on digits-images);
        # on TF-IDF too (docstring-sections: LightGBM's AUC the same at 2.2x the speed, XGBoost's higher at 2.6x)
        faster = families.MOVES["faster_learning"].change(families.current_params(path, member.params), 1, ctx)
        member = member.model_copy(update={"params": {**member.params, **(faster or {})}})
    return ScriptSpec(title=card.name, load_data=LoadSpec(), preprocess=preprocess,
                      model=ModelSpec(members=[member]), train=draft_train(ctx, family), predict=predict_spec(ctx))


def draft_train(ctx: TaskContext, family: families.Family | None) -> TrainSpec:
    """A draft's train block: boosting stops early from the start, on an inner split of the training rows. 500
    rounds at rate 0.05 overfit small data. Mean score over a run's three validation folds, without and with
    stopping: log loss 1.71 and 0.89 for chile-vote's LightGBM draft (its linear draft: 0.85), 2.53 and 1.44 for
    political-information's; ROC AUC 0.680 and 0.711 for wilms-relapse's LightGBM, 0.678 and 0.736 for its CatBoost
    (its linear draft: 0.726); balanced accuracy 0.724 and 0.749, 0.729 and 0.759 for aids-australia's; MAE 5.58
    and 5.54, 5.79 and 5.50 for medicare-stay's; RMSE 56.4 and 54.2, 56.9 and 55.0 for diabetes'. Elsewhere within
    the folds' noise: biopsy's ROC AUC 0.9878 and 0.9874, 0.9882 and 0.9881; diamonds' RMSLE 0.1173 and 0.1170,
    0.1120 and 0.1124; penguins' accuracy 0.982 and 0.979, 0.982 and 0.984 (LightGBM, then CatBoost, on each task).
    Image tasks keep the full rounds (their pixel boosters were sized for the timeout without the extra fit), and so
    do several targets (the wrapper holds one estimator per target)."""
    stop = not ctx.targets and ctx.images is None and family is not None and family.early_stopping
    return TrainSpec(early_stopping=stop)


def merged_train(base: TrainSpec, reference: TrainSpec) -> TrainSpec | None:
    """The merge's train block: the base's, stopping early when the added members were drafted to (None: the
    base's as it is). The merge keeps the base's train block, so a LightGBM drafted with early stopping would
    otherwise join a linear base with its full 500 rounds."""
    if reference.early_stopping and not base.early_stopping:
        return base.model_copy(update={"early_stopping": True})
    return None


def _same(a: MemberSpec, b: MemberSpec) -> bool:
    return (a.estimator, a.params, a.target) == (b.estimator, b.params, b.target)


def merged_model(ctx: TaskContext, base: ModelSpec, reference: ModelSpec,
                 preprocess: PreprocessSpec | None) -> ModelSpec | None:
    """The base's members plus the reference's new ones, all weighted equally; None when nothing is new.

    The base's preprocessing stays as it is, so each added member brings its own scaler or imputer if it needs
    one that the base does not provide; a member that cannot read the base's features (dense-only models beside
    TF-IDF, naive Bayes beside table columns) is left out.
    """
    added = []
    for member in reference.members:
        if any(_same(member, m) for m in [*base.members, *added]):
            continue
        fresh = make_member(ctx, member.estimator, member.params, preprocess)
        fresh = fresh.model_copy(update={
            "target": member.target,
            "scale": member.scale or fresh.scale,
            "impute": member.impute or fresh.impute,
        })
        if text.fits(ctx, fresh, preprocess):
            added.append(fresh)
    if not added:
        return None
    members = [m.model_copy(update={"weight": 1.0}) for m in [*base.members, *added]]
    return ModelSpec(members=members)


TEXT_EXAMPLE_CONTEXT = TaskContext(  # spooky-author's shape: an id, one free-text column, a label; log loss
    name="example", goal="", task_type="classification", metric="log_loss", maximize=False, proba=True,
    target="author", id_column="id", prediction_columns=["EAP", "HPL", "MWS"], classes=["EAP", "HPL", "MWS"],
    columns=[ColumnInfo(name="text", dtype="text", unique=1000)], n_train=1000, n_valid=250, n_test=500,
    files=["sample_submission.csv", "test.csv", "train.csv", "valid.csv"], modality="text")


def text_example(card: ModelCard) -> str | None:
    """The script the heuristic drafts from ``card`` on a free-text competition (TF-IDF n-grams into the model): the
    example of a card made for text, where the table template would one-hot the text. None if the card cannot fit
    text."""
    spec = initial_spec(TEXT_EXAMPLE_CONTEXT, card)
    return None if spec is None else render_script(TEXT_EXAMPLE_CONTEXT, spec)
