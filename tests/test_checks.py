"""The static checks on solution scripts: which leaks they report (and on which line), which correct scripts they
leave alone, and which provided files a script ignores. The clean scripts here are run for real to show they are the
kind of script the agent writes, not strawmen."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_wine

from core.checks import Finding, check_script, data_usage_findings, leakage_findings, unused_files

SCORE_LINE = re.compile(r"^Final Validation Performance: (\S+)$", re.MULTILINE)
FILES = ["train.csv", "valid.csv", "test.csv", "sample_submission.csv"]


def script(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def line_of(code: str, fragment: str) -> int:
    """The 1-based line of the only line of ``code`` containing ``fragment``."""
    lines = [number for number, line in enumerate(code.splitlines(), 1) if fragment in line]
    assert len(lines) == 1, f"{fragment!r} is on lines {lines}"
    return lines[0]


# --- correct scripts (also run for real below) -----------------------------------------------------------------

PIPELINE = script('''
    """Wine cultivars: imputation, scaling and one-hot codes in one Pipeline fitted on the training rows only."""
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    train = pd.read_csv("./input/train.csv")
    valid = pd.read_csv("./input/valid.csv")
    test = pd.read_csv("./input/test.csv")
    sample = pd.read_csv("./input/sample_submission.csv")
    id_column, target = sample.columns[0], sample.columns[1]

    features = [c for c in train.columns if c in test.columns and c != id_column]
    numeric = train[features].select_dtypes("number").columns.tolist()
    categorical = [c for c in features if c not in numeric]
    X_train, y_train = train[features], train[target]
    X_valid, y_valid = valid[features], valid[target]
    X_test = test[features]

    preprocess = ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("categorical", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                      OneHotEncoder(handle_unknown="ignore")), categorical),
    ])
    model = Pipeline([("preprocess", preprocess), ("classify", LogisticRegression(max_iter=2000))])
    model.fit(X_train, y_train)

    valid_pred = model.predict(X_valid)
    print(f"valid rows: {len(X_valid)}, mean of first feature: {X_valid[numeric[0]].mean():.3f}")
    pd.DataFrame({id_column: valid[id_column], target: valid_pred}).to_csv("val_predictions.csv", index=False)
    pd.DataFrame({id_column: test[id_column], target: model.predict(X_test)}).to_csv("submission.csv", index=False)
    print(f"Final Validation Performance: {accuracy_score(y_valid, valid_pred):.6f}")
''')

LIGHTGBM = script('''
    """Wine cultivars with LightGBM: train medians fill every frame, early stopping on a split of the training rows."""
    import lightgbm as lgb
    import numpy as np
    import pandas as pd
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelEncoder

    INPUT = "./input"
    train = pd.read_csv(f"{INPUT}/train.csv")
    valid = pd.read_csv(f"{INPUT}/valid.csv")
    test = pd.read_csv(f"{INPUT}/test.csv")
    sample = pd.read_csv(f"{INPUT}/sample_submission.csv")
    ID, TARGET = sample.columns[0], sample.columns[1]

    features = [c for c in test.columns if c != ID]
    medians = train[features].median(numeric_only=True)
    for frame in (train, valid, test):
        frame[features] = frame[features].fillna(medians)
        frame["ratio"] = frame["flavanoids"] / (frame["proline"] + 1.0)
    features.append("ratio")
    for column in train[features].select_dtypes(exclude="number").columns:
        levels = train[column].astype("category").cat.categories  # the training rows' levels, unknown ones -> NaN
        for frame in (train, valid, test):
            frame[column] = pd.Categorical(frame[column], categories=levels)

    labels = LabelEncoder().fit(train[TARGET])
    y = labels.transform(train[TARGET])
    X_fit, X_stop, y_fit, y_stop = train_test_split(train[features], y, test_size=0.2, random_state=0, stratify=y)
    model = lgb.LGBMClassifier(n_estimators=400, learning_rate=0.05, num_leaves=15, min_child_samples=5,
                               random_state=0, verbose=-1)
    model.fit(X_fit, y_fit, eval_set=[(X_stop, y_stop)], callbacks=[lgb.early_stopping(30, verbose=False)])

    valid_pred = labels.inverse_transform(model.predict(valid[features]))
    test_pred = labels.inverse_transform(model.predict(test[features]))
    valid[[ID]].assign(**{TARGET: valid_pred}).to_csv("val_predictions.csv", index=False)
    test[[ID]].assign(**{TARGET: test_pred}).to_csv("submission.csv", index=False)
    print(f"Final Validation Performance: {accuracy_score(valid[TARGET], valid_pred):.6f}")
''')

# The ensemble stage: candidates' validation predictions are the stacker's features; cross_val_predict keeps the
# stacker's own validation predictions out of fold, and the refit on every validation row only predicts test.
STACKING = script('''
    """Stack the candidates' class predictions with a logistic regression trained on the validation rows."""
    import os

    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import cross_val_predict

    valid = pd.read_csv("./input/valid.csv")
    sample = pd.read_csv("./input/sample_submission.csv")
    ID, TARGET = sample.columns[0], sample.columns[1]
    names = sorted(os.listdir("./input/candidates"))

    def predictions(file_name: str) -> pd.DataFrame:
        columns = [pd.read_csv(f"./input/candidates/{name}/{file_name}").set_index(ID)[TARGET].rename(name)
                   for name in names]
        return pd.get_dummies(pd.concat(columns, axis=1).astype(str), dtype=float)

    stack_valid = valid[[ID]].merge(predictions("val_predictions.csv"), left_on=ID, right_index=True)
    stack_test = predictions("submission.csv")
    X_stack = stack_valid.drop(columns=[ID])
    X_stack_test = stack_test.reindex(columns=X_stack.columns, fill_value=0.0)
    y_valid = valid[TARGET]

    stacker = LogisticRegression(max_iter=1000)
    valid_pred = cross_val_predict(stacker, X_stack, y_valid, cv=3)
    stacker.fit(X_stack, y_valid)
    pd.DataFrame({ID: valid[ID], TARGET: valid_pred}).to_csv("val_predictions.csv", index=False)
    pd.DataFrame({ID: stack_test.index, TARGET: stacker.predict(X_stack_test)}).to_csv("submission.csv", index=False)
    print(f"Final Validation Performance: {accuracy_score(y_valid, valid_pred):.6f}")
''')

CLEAN = {"sklearn pipeline": PIPELINE, "lightgbm": LIGHTGBM, "stacking on out-of-fold predictions": STACKING}


@pytest.mark.parametrize("code", CLEAN.values(), ids=CLEAN.keys())
def test_correct_scripts_have_no_leakage_findings(code):
    assert leakage_findings(code) == []


def test_every_catalogue_card_script_has_no_leakage_findings():
    from retrieval.catalogue import catalogue

    scripts = {entry.card.name: entry.card.example_code for entry in catalogue()}
    assert scripts
    assert {name: leakage_findings(code) for name, code in scripts.items()} == {name: [] for name in scripts}


def test_fitted_objects_applied_to_valid_and_test_and_metrics_on_valid_are_not_findings():
    code = script('''
        import pandas as pd
        from sklearn.metrics import roc_auc_score
        from sklearn.preprocessing import StandardScaler
        train, valid, test = (pd.read_csv(f"./input/{part}.csv") for part in ("train", "valid", "test"))
        X_train, y_train = train.drop(columns=["y"]), train["y"]
        X_valid, y_valid = valid.drop(columns=["y"]), valid["y"]
        scaler = StandardScaler().fit(X_train)
        X_valid_scaled = scaler.transform(X_valid)
        model.fit(scaler.transform(X_train), y_train)
        auc = roc_auc_score(y_valid, model.predict_proba(X_valid_scaled)[:, 1])
        best = max(auc, 0.5)
        test["y"] = model.predict(scaler.transform(test))
        test = test.fillna(test.median())
    ''')
    assert leakage_findings(code) == []


# --- rule 1: fitting on validation or test rows ----------------------------------------------------------------

def test_scaler_fitted_on_validation_rows_is_reported_on_its_line():
    code = PIPELINE.replace("X_test = test[features]\n", "X_test = test[features]\n"
                            "X_valid_scaled = StandardScaler().fit_transform(X_valid)\n")

    [finding] = leakage_findings(code)

    assert finding == Finding("leakage", line_of(code, "fit_transform(X_valid)"), finding.message)
    assert finding.message.startswith(f"line {finding.line}: `StandardScaler().fit_transform` is applied to "
                                      "`X_valid` (derived from valid.csv)")
    assert "fit on training rows only" in finding.message


def test_imputer_fit_transform_on_test_rows_is_reported():
    code = script('''
        import pandas as pd
        from sklearn.impute import SimpleImputer

        train = pd.read_csv("./input/train.csv")
        test = pd.read_csv("./input/test.csv")
        numeric = ["alcohol", "magnesium"]
        imputer = SimpleImputer(strategy="median")
        train[numeric] = imputer.fit_transform(train[numeric])
        test[numeric] = imputer.fit_transform(test[numeric])
    ''')

    [finding] = leakage_findings(code)

    assert finding.line == line_of(code, "fit_transform(test[numeric])")
    assert finding.message == (f"line {finding.line}: `imputer.fit_transform` is applied to `test[numeric]` (derived "
                               "from test.csv): fit on training rows only, then transform")


def test_model_fitted_on_validation_rows_is_reported():
    code = LIGHTGBM.replace("model.fit(X_fit, y_fit, eval_set", "model.fit(valid[features], "
                            "labels.transform(valid[TARGET]), eval_set")

    [finding] = leakage_findings(code)

    assert finding.line == line_of(code, "model.fit(")
    assert "`model.fit` is applied to `valid[features]` (derived from valid.csv)" in finding.message
    assert "valid.csv is only for measuring" in finding.message


def test_validation_rows_used_by_native_boosting_and_cross_validation_are_reported():
    code = script('''
        import lightgbm as lgb
        import pandas as pd
        from sklearn.model_selection import cross_val_score
        valid = pd.read_csv("./input/valid.csv")
        X_valid, y_valid = valid.drop(columns=["y"]), valid["y"]
        booster = lgb.train({"objective": "binary"}, lgb.Dataset(X_valid, label=y_valid))
        scores = cross_val_score(model, X_valid, y_valid, cv=5)
        search = GridSearchCV(model, {"max_depth": [2, 4]}, cv=3).fit(X_valid, y_valid)
    ''')

    assert [f.message.split(" is applied")[0] for f in leakage_findings(code)] == [
        f"line {line_of(code, 'lgb.train')}: `lgb.train`",
        f"line {line_of(code, 'cross_val_score(model')}: `cross_val_score`",
        f"line {line_of(code, 'GridSearchCV')}: `GridSearchCV(...).fit`",
    ]


def test_a_local_helper_that_fits_its_argument_is_reported_where_it_gets_validation_rows():
    code = script('''
        import pandas as pd
        from sklearn.ensemble import RandomForestClassifier

        def train_model(features, labels):
            model = RandomForestClassifier(random_state=0)
            model.fit(features, labels)
            return model

        train = pd.read_csv("./input/train.csv")
        valid = pd.read_csv("./input/valid.csv")
        good = train_model(train.drop(columns=["y"]), train["y"])
        bad = train_model(valid.drop(columns=["y"]), valid["y"])
    ''')

    [finding] = leakage_findings(code)

    assert finding.line == line_of(code, "bad = ")
    assert f"`model.fit` (inside `train_model`, line {line_of(code, 'model.fit')})" in finding.message
    assert "`valid.drop(columns=['y'])` (derived from valid.csv)" in finding.message


def test_taint_follows_copy_drop_and_tuple_unpacking():
    code = script('''
        import os
        import pandas as pd
        from sklearn.preprocessing import MinMaxScaler
        DATA = "./input"
        train = pd.read_csv(os.path.join(DATA, "train.csv"))
        test_raw = pd.read_csv(os.path.join(DATA, "test.csv"))
        held_out = test_raw.copy()
        held_out = held_out.drop(columns=["row_id"])
        first, second = train.drop(columns=["row_id"]), held_out
        rows = second.values
        MinMaxScaler().fit(first)
        MinMaxScaler().fit(rows)
    ''')

    [finding] = leakage_findings(code)

    assert finding.line == line_of(code, "fit(rows)")
    assert "`MinMaxScaler().fit` is applied to `rows` (derived from test.csv)" in finding.message


def test_frames_read_in_an_unpacked_comprehension_keep_their_own_file():
    code = script('''
        import pandas as pd
        train, valid, test = [pd.read_csv(f"./input/{name}.csv") for name in ["train", "valid", "test"]]
        encoder.fit(train[["colour"]])
        encoder.fit(test[["colour"]])
    ''')

    assert [(f.line, "test.csv" in f.message) for f in leakage_findings(code)] == [(line_of(code, "fit(test"), True)]


def test_a_loop_over_frames_reports_only_the_held_out_frame_it_fits():
    code = script('''
        import pandas as pd
        train = pd.read_csv("./input/train.csv")
        test = pd.read_csv("./input/test.csv")
        for df in [train, test]:
            df["a"] = df["a"].fillna(df["a"].median())
            df["b"] = scaler.fit_transform(df[["b"]])
    ''')

    [finding] = leakage_findings(code)

    assert finding.line == 6
    assert "`df[['b']]` (derived from test.csv)" in finding.message


# --- rule 3: fitting on train and held-out rows together -------------------------------------------------------

def test_encoder_fitted_on_train_and_test_concatenated_is_reported():
    code = script('''
        import pandas as pd
        from sklearn.preprocessing import LabelEncoder

        train = pd.read_csv("./input/train.csv")
        test = pd.read_csv("./input/test.csv")
        everything = pd.concat([train, test], ignore_index=True)
        for column in ["colour_band"]:
            encoder = LabelEncoder()
            encoder.fit(everything[column].astype(str))
            train[column] = encoder.transform(train[column].astype(str))
            test[column] = encoder.transform(test[column].astype(str))
    ''')

    [finding] = leakage_findings(code)

    assert finding.line == line_of(code, "encoder.fit(")
    assert finding.message == (f"line {finding.line}: `encoder.fit` is applied to `everything[column].astype(str)`, "
                               "which combines rows of train.csv and test.csv: fit on training rows only")


def test_model_fitted_on_train_plus_validation_rows_is_reported():
    code = script('''
        import numpy as np
        import pandas as pd
        train = pd.read_csv("./input/train.csv")
        valid = pd.read_csv("./input/valid.csv")
        X_all = np.vstack([train[cols].to_numpy(), valid[cols].to_numpy()])
        y_all = np.concatenate([train["y"], valid["y"]])
        model.fit(X_all, y_all)
    ''')

    [finding] = leakage_findings(code)

    assert "which combines rows of train.csv and valid.csv" in finding.message
    assert "valid.csv is only for measuring" in finding.message


def test_rows_sliced_back_out_of_a_concatenation_are_not_reported():
    code = script('''
        import pandas as pd
        train = pd.read_csv("./input/train.csv")
        test = pd.read_csv("./input/test.csv")
        y = train.pop("price")
        full = pd.get_dummies(pd.concat([train, test]), columns=["cut"])
        X = full.iloc[:len(train)]
        X_test = full.iloc[len(train):]
        model.fit(X, y)
        prediction = model.predict(X_test)
    ''')

    assert leakage_findings(code) == []


# --- rule 2: statistics of held-out rows used on training rows -------------------------------------------------

def test_test_mean_used_to_fill_training_rows_is_reported_where_it_is_used():
    code = script('''
        import pandas as pd
        train = pd.read_csv("./input/train.csv")
        test = pd.read_csv("./input/test.csv")
        X_train = train.drop(columns=["label"])
        X_test = test.copy()
        fill_value = X_test["magnesium"].mean()
        X_train["magnesium"] = X_train["magnesium"].fillna(fill_value)
        X_test["magnesium"] = X_test["magnesium"].fillna(fill_value)
    ''')

    [finding] = leakage_findings(code)

    assert finding.line == line_of(code, 'X_train["magnesium"] =')
    assert finding.message == (
        f"line {finding.line}: `fill_value` (= `X_test['magnesium'].mean()`, line {line_of(code, 'fill_value =')}) "
        "is a statistic of `X_test['magnesium']` (derived from test.csv) and is used on training rows: "
        "compute statistics on training rows only")


def test_inline_validation_statistics_and_statistics_of_combined_rows_are_reported():
    code = script('''
        import pandas as pd
        train = pd.read_csv("./input/train.csv")
        valid = pd.read_csv("./input/valid.csv")
        test = pd.read_csv("./input/test.csv")
        train["a"] = train["a"].clip(upper=valid["a"].quantile(0.99))
        both = pd.concat([train, test])
        both["b"] = both["b"].fillna(both["b"].median())
        frequency = pd.concat([train["c"], test["c"]]).value_counts()
        train["c_count"] = train["c"].map(frequency)
    ''')

    found = leakage_findings(code)

    assert [f.line for f in found] == [5, 7, 9]
    assert "`valid['a'].quantile(0.99)` is a statistic of `valid['a']` (derived from valid.csv)" in found[0].message
    assert "`both['b']`, which includes rows of test.csv, and is used" in found[1].message
    assert "`frequency`" in found[2].message


def test_statistics_of_training_rows_or_of_a_frame_used_on_itself_are_not_reported():
    code = script('''
        import numpy as np
        import pandas as pd
        train = pd.read_csv("./input/train.csv")
        test = pd.read_csv("./input/test.csv")
        means = train.mean(numeric_only=True)
        test = test.fillna(means)
        test["a"] = test["a"].fillna(test["a"].median())
        confidence = model.predict_proba(test).max(axis=1)
        print("test mean", test["a"].mean(), train.shape)
        summary = f"{test['a'].max()} vs {train['a'].max()}"
        predictions = np.mean([m.predict(test) for m in models], axis=0)
    ''')

    assert leakage_findings(code) == []


# --- the target among the features -----------------------------------------------------------------------------

def test_whole_training_frame_given_with_its_own_target_column_is_reported():
    code = script('''
        import pandas as pd
        train = pd.read_csv("./input/train.csv")
        X = train.drop(columns=["row_id"])
        y = train["quality"]
        model.fit(X, y)
        model.fit(train, train.quality)
    ''')

    found = leakage_findings(code)

    assert [f.line for f in found] == [5, 6]
    assert found[0].message == ("line 5: `model.fit` gets features `X` that still hold the target column 'quality' "
                                "(`y`): drop the target column from the features")


def test_target_dropped_popped_or_left_out_is_not_reported():
    code = script('''
        import pandas as pd
        TARGET = "quality"
        train = pd.read_csv("./input/train.csv")
        model.fit(train.drop(columns=["row_id", TARGET]), train[TARGET])
        model.fit(train[["alcohol", "ash"]], train[TARGET])
        copy = train.copy()
        y = copy.pop(TARGET)
        model.fit(copy, y)
        other = train.copy()
        other.drop(TARGET, axis=1, inplace=True)
        model.fit(other, train[TARGET])
        model.fit(train.drop(columns=target_columns), train[TARGET])
    ''')

    assert leakage_findings(code) == []


def test_a_script_that_does_not_parse_has_no_leakage_findings():
    assert leakage_findings("model.fit(X_test\n") == []


# --- data usage ------------------------------------------------------------------------------------------------

WITH_STORES = FILES + ["stores.csv"]


def test_a_provided_file_the_script_never_mentions_is_unused():
    assert unused_files(PIPELINE, WITH_STORES) == ["stores.csv"]
    assert unused_files(STACKING, WITH_STORES) == ["train.csv", "test.csv", "stores.csv"]


def test_a_file_read_through_an_f_string_of_its_stem_is_used():
    code = script('''
        import pandas as pd
        frames = {name: pd.read_csv(f"./input/{name}.csv") for name in ["train", "valid", "test", "stores"]}
        submission = pd.read_csv("./input/sample_submission.csv")
    ''')

    assert unused_files(code, WITH_STORES) == []


def test_a_loop_over_the_input_folder_uses_every_file():
    code = script('''
        import os
        import pandas as pd
        INPUT_DIR = "./input"
        tables = {}
        for file_name in os.listdir(INPUT_DIR):
            tables[file_name.removesuffix(".csv")] = pd.read_csv(os.path.join(INPUT_DIR, file_name))
    ''')

    assert unused_files(code, WITH_STORES) == []


def test_glob_patterns_use_the_files_they_match_and_other_folders_do_not_count():
    globbed = 'import glob\nparts = [pd.read_csv(p) for p in glob.glob("./input/*.csv")]\n'
    elsewhere = 'import os\nnames = os.listdir("./input/candidates")\nprint("*" * 40)\n'

    assert unused_files(globbed, WITH_STORES + ["notes.txt"]) == ["notes.txt"]
    assert unused_files(elsewhere, ["stores.csv"]) == ["stores.csv"]


def test_a_file_named_only_in_a_docstring_is_unused():
    code = script('''
        """Uses ./input/stores.csv for store sizes."""
        import pandas as pd
        train = pd.read_csv("./input/train.csv")
    ''')

    assert unused_files(code, ["train.csv", "stores.csv"]) == ["stores.csv"]


def test_data_usage_findings_name_each_unused_file_and_check_script_adds_leakage():
    leaky = PIPELINE.replace("model.fit(X_train, y_train)", "model.fit(X_valid, y_valid)")

    usage = data_usage_findings(PIPELINE, WITH_STORES)
    both = check_script(leaky, WITH_STORES)

    assert [(f.kind, f.line) for f in usage] == [("data_usage", 0)]
    assert usage[0].message.startswith("./input/stores.csv is provided but the script never reads it")
    assert [f.kind for f in both] == ["leakage", "data_usage"]
    assert both[0].line == line_of(leaky, "model.fit(X_valid")


def test_a_script_without_a_cross_val_predict_stacker_fitted_on_valid_is_reported():
    code = STACKING.replace("valid_pred = cross_val_predict(stacker, X_stack, y_valid, cv=3)\n", "").replace(
        "stacker.fit(X_stack, y_valid)\n", "stacker.fit(X_stack, y_valid)\nvalid_pred = stacker.predict(X_stack)\n")

    [finding] = leakage_findings(code)

    assert finding.line == line_of(code, "stacker.fit(")
    assert "`X_stack` (derived from valid.csv)" in finding.message


# --- the clean scripts run for real ----------------------------------------------------------------------------

def contract_folder(folder: Path, frame: pd.DataFrame, target: str) -> dict[str, pd.DataFrame]:
    """./input/{train,valid,test,sample_submission}.csv as the framework writes them (60/20/20, test unlabelled)."""
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    frame.insert(0, "row_id", np.arange(1000, 1000 + len(frame)))
    n_train, n_valid = int(len(frame) * 0.6), int(len(frame) * 0.2)
    parts = {"train": frame.iloc[:n_train], "valid": frame.iloc[n_train:n_train + n_valid],
             "test": frame.iloc[n_train + n_valid:].drop(columns=[target])}
    parts["sample_submission"] = pd.DataFrame({"row_id": parts["test"]["row_id"], target: frame[target].iloc[0]})
    (folder / "input").mkdir(parents=True)
    for name, part in parts.items():
        part.to_csv(folder / "input" / f"{name}.csv", index=False)
    return parts


def wine() -> pd.DataFrame:
    data = load_wine(as_frame=True)
    frame = data.data.rename(columns={"od280/od315_of_diluted_wines": "od280_od315"})
    frame["colour_band"] = pd.cut(frame["color_intensity"], 3, labels=["pale", "medium", "deep"]).astype(str)
    frame.loc[frame.index % 11 == 0, "magnesium"] = np.nan
    frame["label"] = [f"cultivar_{k}" for k in data.target]
    return frame


def run(code: str, folder: Path) -> float:
    (folder / "solution.py").write_text(code)
    done = subprocess.run([sys.executable, "solution.py"], cwd=folder, check=False, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    [score] = SCORE_LINE.findall(done.stdout)
    return float(score)


def test_clean_scripts_run_on_wine_and_their_stack_runs_on_their_predictions(tmp_path):
    parts = contract_folder(tmp_path, wine(), "label")
    candidates = tmp_path / "input" / "candidates"
    for name, code in [("pipeline", PIPELINE), ("lightgbm", LIGHTGBM)]:
        assert run(code, tmp_path) >= 0.85, name
        (candidates / name).mkdir(parents=True)
        for output in ("val_predictions.csv", "submission.csv"):
            shutil.move(tmp_path / output, candidates / name / output)

    assert run(STACKING, tmp_path) >= 0.85
    written = pd.read_csv(tmp_path / "submission.csv")
    assert written["row_id"].tolist() == parts["test"]["row_id"].tolist()


def test_pipeline_script_runs_on_breast_cancer(tmp_path):
    data = load_breast_cancer(as_frame=True)
    frame = data.data.rename(columns=lambda c: c.replace(" ", "_"))
    frame["diagnosis"] = np.where(data.target == 1, "benign", "malignant")
    contract_folder(tmp_path, frame, "diagnosis")

    assert run(PIPELINE, tmp_path) >= 0.9


EARLY_STOPPING_ON_VALID = '''
import lightgbm as lgb
import pandas as pd

train = pd.read_csv("input/train.csv")
valid = pd.read_csv("input/valid.csv")
X, y = train.drop(columns=["id", "y"]), train["y"]
Xv, yv = valid.drop(columns=["id", "y"]), valid["y"]
model = lgb.LGBMClassifier(n_estimators=500)
model.fit(X, y, eval_set=[(Xv, yv)], callbacks=[lgb.early_stopping(20)])
'''


def test_early_stopping_watched_on_the_validation_rows_is_leakage():
    findings = leakage_findings(EARLY_STOPPING_ON_VALID)
    assert [f.line for f in findings] == [10]
    assert "stops early" in findings[0].message and "valid.csv" in findings[0].message


def test_early_stopping_on_held_out_training_rows_is_not_leakage():
    code = EARLY_STOPPING_ON_VALID.replace(
        'Xv, yv = valid.drop(columns=["id", "y"]), valid["y"]',
        'Xv, yv = X.iloc[-50:], y.iloc[-50:]\nX, y = X.iloc[:-50], y.iloc[:-50]')
    assert leakage_findings(code) == []
