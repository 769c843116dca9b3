"""The example script every catalogue card carries, rendered from one template.

Cards differ only in the estimator classes, their parameters and how inputs are prepared, so one template with those
filled in keeps the nine scripts from drifting apart.
"""

from __future__ import annotations

from string import Template

from core.cards import Estimator

# A `string.Template`, not str.format: the script is full of braces, and `$` appears nowhere else in it.
_SCRIPT = Template('''\
"""$title: a baseline solution script.

Trains on ./input/train.csv, scores on ./input/valid.csv, predicts ./input/test.csv; writes ./val_predictions.csv
and ./submission.csv in the format of ./input/sample_submission.csv (first column = id, the rest = targets) and
prints the validation score: accuracy for classification, RMSE for regression.
"""

import inspect

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.impute import SimpleImputer
from sklearn.metrics import accuracy_score, mean_squared_error
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
$imports

CLASSIFIER = $classifier
REGRESSOR = $regressor
PARAMS = $params
IMPUTE = $impute  # fill numeric gaps with the column median, for models that reject NaN
SCALE = $scale  # standardise inputs (and regression targets), for distance- and gradient-based models
ONE_HOT = $one_hot  # one-hot codes for linear and distance models; trees split on ordinal codes just as well


def is_classification(y: pd.Series) -> bool:
    # Strings and booleans are labels; whole numbers with few distinct values are class labels too.
    if pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        return True
    return y.nunique() <= 20 and bool(np.all(np.mod(y, 1) == 0))


def make_preprocessor(features: pd.DataFrame) -> ColumnTransformer:
    numeric = features.select_dtypes(include=["number", "bool"]).columns.tolist()
    categorical = [column for column in features.columns if column not in numeric]
    numeric_steps = ([SimpleImputer(strategy="median")] if IMPUTE else []) + ([StandardScaler()] if SCALE else [])
    if ONE_HOT:
        # Capping the categories keeps an id-like text column from exploding the width.
        encoder = OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=20, sparse_output=False)
    else:
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    return ColumnTransformer([
        ("numeric", make_pipeline(*numeric_steps) if numeric_steps else "passthrough", numeric),
        # A missing category is information, so it becomes a category of its own.
        ("categorical", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"), encoder), categorical),
    ])


def make_model(classification: bool):
    model_class = CLASSIFIER if classification else REGRESSOR
    if model_class is None:
        raise SystemExit(f"this model has no {'classifier' if classification else 'regressor'}; pick another model")
    # One PARAMS dict serves both classes (SVC takes `probability`, SVR does not): keep the keys this class accepts.
    accepted = inspect.signature(model_class).parameters
    takes_any = any(parameter.kind is parameter.VAR_KEYWORD for parameter in accepted.values())
    model = model_class(**{key: value for key, value in PARAMS.items() if takes_any or key in accepted})
    if SCALE and not classification:
        model = TransformedTargetRegressor(regressor=model, transformer=StandardScaler())
    return model


def main() -> None:
    train = pd.read_csv("./input/train.csv")
    valid = pd.read_csv("./input/valid.csv")
    test = pd.read_csv("./input/test.csv")
    sample = pd.read_csv("./input/sample_submission.csv")
    id_column, targets = sample.columns[0], list(sample.columns[1:])
    features = [c for c in train.columns if c in test.columns and c != id_column and c not in targets]

    val_predictions = pd.DataFrame({id_column: valid[id_column]})
    submission = pd.DataFrame({id_column: test[id_column]})
    scores = []
    for target in targets:
        rows = train[train[target].notna()]
        classification = is_classification(rows[target])
        pipeline = make_pipeline(make_preprocessor(rows[features]), make_model(classification))
        pipeline.fit(rows[features], rows[target])
        val_predictions[target] = pipeline.predict(valid[features])
        submission[target] = pipeline.predict(test[features])
        if classification:
            scores.append(accuracy_score(valid[target], val_predictions[target]))
        else:
            scores.append(float(np.sqrt(mean_squared_error(valid[target], val_predictions[target]))))

    val_predictions.to_csv("val_predictions.csv", index=False)
    submission.to_csv("submission.csv", index=False)
    print(f"Final Validation Performance: {float(np.mean(scores)):.6f}")


if __name__ == "__main__":
    main()
''')


def render_script(title: str, estimator: Estimator, *, one_hot: bool) -> str:
    """The complete solution script for one card: its estimator classes, parameters and input preparation."""
    by_module: dict[str, list[str]] = {}
    for path in filter(None, (estimator.classification, estimator.regression)):
        module, _, name = path.rpartition(".")
        by_module.setdefault(module, []).append(name)
    imports = [f"from {module} import {', '.join(names)}" for module, names in sorted(by_module.items())]
    return _SCRIPT.substitute(
        title=title,
        imports="\n".join(imports),
        classifier=_class_name(estimator.classification),
        regressor=_class_name(estimator.regression),
        params=_dict_literal(estimator.params),
        impute=not estimator.handles_missing,
        scale=estimator.needs_scaling,
        one_hot=one_hot,
    )


def _class_name(path: str | None) -> str:
    return path.rpartition(".")[2] if path else "None"


def _dict_literal(params: dict) -> str:
    one_line = repr(dict(params))
    if len(one_line) <= 100:
        return one_line
    return "{\n" + "".join(f"    {key!r}: {value!r},\n" for key, value in params.items()) + "}"
