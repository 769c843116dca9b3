"""Reading language-model replies, on hand-written replies of the kinds small and large models give: fenced and bare
scripts, JSON inside prose, broken and cut-off JSON, plan lists, blocks with wrong indentation or a whole script
where a block was asked for; plus the prompt budget, template overrides and option checks (no model needed)."""

from __future__ import annotations

import ast
import json
import textwrap
from types import SimpleNamespace

import pytest

from ablation import splice, split_blocks
from core.errors import PluginError
from core.policy import AblationView, BlockInfo, ColumnInfo, PlanRecord, TaskContext
from plugins.llm import prompting, replies
from plugins.llm.prompting import Part, render
from plugins.llm.replies import ReplyError
from plugins.policy_hf import HFPolicy
from plugins.policy_openai import OpenAIPolicy

SCRIPT = textwrap.dedent('''\
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    train = pd.read_csv("./input/train.csv")
    valid = pd.read_csv("./input/valid.csv")
    test = pd.read_csv("./input/test.csv")
    FEATURES = ["bill_length_mm", "flipper_length_mm"]
    medians = train[FEATURES].median()

    model = LogisticRegression(max_iter=1000)
    model.fit(train[FEATURES].fillna(medians), train["species"])

    val_predictions = pd.DataFrame({"id": valid["id"], "species": model.predict(valid[FEATURES].fillna(medians))})
    submission = pd.DataFrame({"id": test["id"], "species": model.predict(test[FEATURES].fillna(medians))})
    val_predictions.to_csv("val_predictions.csv", index=False)
    submission.to_csv("submission.csv", index=False)
    print(f"Final Validation Performance: {(val_predictions['species'] == valid['species']).mean():.6f}")
''')

MAIN_SCRIPT = textwrap.dedent('''\
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier


    def main():
        train = pd.read_csv("./input/train.csv")
        valid = pd.read_csv("./input/valid.csv")
        test = pd.read_csv("./input/test.csv")
        features = [c for c in train.columns if c not in ("id", "species")]
        X_train = pd.get_dummies(train[features]).fillna(0)
        X_valid = pd.get_dummies(valid[features]).reindex(columns=X_train.columns, fill_value=0).fillna(0)
        X_test = pd.get_dummies(test[features]).reindex(columns=X_train.columns, fill_value=0).fillna(0)
        model = RandomForestClassifier(n_estimators=100, random_state=0)
        model.fit(X_train, train["species"])
        pd.DataFrame({"id": valid["id"], "species": model.predict(X_valid)}).to_csv("val_predictions.csv", index=False)
        pd.DataFrame({"id": test["id"], "species": model.predict(X_test)}).to_csv("submission.csv", index=False)
        print("Final Validation Performance: 0.9")


    if __name__ == "__main__":
        main()
''')


def block_of(code: str, kind: str) -> BlockInfo:
    block = next(b for b in split_blocks(code) if b.kind == kind)
    return BlockInfo(key=block.key, kind=block.kind, source=block.source)


# --- scripts ------------------------------------------------------------------------------------------------------

def test_a_fenced_script_is_taken_from_the_prose_around_it():
    reply = f"Sure! Here is the solution:\n\n```python\n{SCRIPT}```\n\nIt trains a logistic regression."
    assert replies.parse_script(reply) == SCRIPT


def test_the_longest_fence_that_parses_wins_over_snippets_and_shell_lines():
    reply = f"Install first:\n```bash\npip install pandas\n```\nA helper:\n```python\nx = 1\n```\n" \
            f"The script:\n```py\n{SCRIPT}```"
    assert replies.parse_script(reply) == SCRIPT


def test_an_unfenced_script_loses_the_prose_lines_above_and_below_it():
    reply = f"Here is the code you asked for.\n{SCRIPT}\nThis should reach a good accuracy."
    assert replies.parse_script(reply) == SCRIPT


def test_a_script_cut_off_at_the_token_limit_is_refused_with_a_hint_to_be_shorter():
    reply = "```python\n" + SCRIPT[: SCRIPT.index("model.fit(") + 14]
    with pytest.raises(ReplyError, match="not valid Python.*cut off"):
        replies.parse_script(reply)


def test_a_script_that_breaks_the_contract_is_refused_naming_what_is_missing():
    without_submission = "\n".join(line for line in SCRIPT.splitlines() if "submission" not in line)
    with pytest.raises(ReplyError, match="submission.csv"):
        replies.parse_script(f"```python\n{without_submission}\n```")
    with pytest.raises(ReplyError, match="Final Validation Performance"):
        replies.parse_script(f"```python\n{SCRIPT.replace('Final Validation Performance', 'score')}```")


def test_a_reply_without_code_is_refused():
    with pytest.raises(ReplyError):
        replies.parse_script("I am sorry, I cannot help with that.")
    with pytest.raises(ReplyError, match="empty"):
        replies.parse_script("   ")


def test_a_leakage_fix_that_still_fits_on_validation_rows_is_refused():
    leaky = SCRIPT.replace('model.fit(train[FEATURES].fillna(medians), train["species"])',
                           'model.fit(valid[FEATURES].fillna(medians), valid["species"])')
    with pytest.raises(ReplyError, match="leaks"):
        replies.parse_leak_free_script(f"```python\n{leaky}```")
    assert replies.parse_leak_free_script(f"```python\n{SCRIPT}```") == SCRIPT


def test_a_data_usage_rewrite_must_read_at_least_one_of_the_ignored_files():
    with pytest.raises(ReplyError, match="stores.csv"):
        replies.parse_script_using(f"```python\n{SCRIPT}```", ["stores.csv"])
    using = SCRIPT.replace('test = pd.read_csv("./input/test.csv")',
                           'test = pd.read_csv("./input/test.csv")\nstores = pd.read_csv("./input/stores.csv")')
    assert "stores.csv" in replies.parse_script_using(f"```python\n{using}```", ["stores.csv"])


# --- blocks -------------------------------------------------------------------------------------------------------

def test_a_block_reply_is_returned_alone_and_splices_into_the_script():
    block = block_of(SCRIPT, "model")
    reply = "```python\nmodel = LogisticRegression(max_iter=2000, C=0.5)\n```"
    new = replies.parse_block(reply, SCRIPT, block)
    assert new == "model = LogisticRegression(max_iter=2000, C=0.5)"
    target = next(b for b in split_blocks(SCRIPT) if b.source == block.source)
    assert "C=0.5" in splice(SCRIPT, target, new)


def test_a_block_inside_main_with_its_first_line_at_column_zero_is_reindented():
    block = block_of(MAIN_SCRIPT, "model")
    assert block.source.startswith("    ")
    reply = ("Here is the improved block:\n```python\n"
             "model = RandomForestClassifier(n_estimators=300,\n"
             "                               min_samples_leaf=2, random_state=0)\n```")
    new = replies.parse_block(reply, MAIN_SCRIPT, block)
    ast.parse(new)
    target = next(b for b in split_blocks(MAIN_SCRIPT) if b.source == block.source)
    spliced = splice(MAIN_SCRIPT, target, new)
    assert "    model = RandomForestClassifier(n_estimators=300," in spliced
    ast.parse(spliced)


def test_a_block_whose_first_line_lost_its_indent_but_the_rest_kept_it_is_repaired():
    raw = "X_train = X_train.fillna(0)\n        X_valid = X_valid.fillna(0)\n        X_test = X_test.fillna(0)"
    assert replies.reindented_block(raw) == "X_train = X_train.fillna(0)\nX_valid = X_valid.fillna(0)\n" \
                                            "X_test = X_test.fillna(0)"
    assert replies.reindented_block("    a = 1\nb = 2") == "a = 1\nb = 2"
    assert replies.reindented_block("def broken(:\n    pass") is None


def test_a_whole_script_given_where_a_block_was_asked_for_is_cut_down_to_the_block():
    block = block_of(SCRIPT, "model")
    rewritten = SCRIPT.replace("model = LogisticRegression(max_iter=1000)",
                               "model = LogisticRegression(max_iter=3000, C=2.0)")
    new = replies.parse_block(f"```python\n{rewritten}```", SCRIPT, block)
    assert new == "model = LogisticRegression(max_iter=3000, C=2.0)"


def test_an_unchanged_or_incomplete_block_is_refused():
    block = block_of(SCRIPT, "model")
    with pytest.raises(ReplyError, match="unchanged"):
        replies.parse_block(f"```python\n{block.source}\n```", SCRIPT, block)
    with pytest.raises(ReplyError, match="no longer defines model"):
        replies.parse_block("```python\nclf = LogisticRegression()\n```", SCRIPT, block)
    with pytest.raises(ReplyError, match="no code"):
        replies.parse_block("nothing", SCRIPT, block)


# --- JSON and plans -----------------------------------------------------------------------------------------------

def test_a_json_list_inside_prose_is_found():
    reply = 'Based on the ablation, I suggest: ["Use 500 trees instead of 100.", "Add the ratio of bill length ' \
            'to depth as a feature."] These should help.'
    assert replies.parse_plans(reply) == ["Use 500 trees instead of 100.",
                                          "Add the ratio of bill length to depth as a feature."]


def test_broken_json_with_single_quotes_and_a_trailing_comma_is_repaired():
    reply = ("```json\n[{'plan': 'Tune the learning rate to 0.03 with 800 rounds.'},\n"
             " {'plan': 'One-hot the island.'},]\n```")
    assert replies.parse_plans(reply) == ["Tune the learning rate to 0.03 with 800 rounds.", "One-hot the island."]


def test_a_json_list_cut_off_at_the_token_limit_keeps_its_complete_items():
    reply = '["Standardise every numeric column.", "Impute gaps with the median.", "Use gradient boost'
    assert replies.extract_json(reply, list) == ["Standardise every numeric column.", "Impute gaps with the median."]


def test_plans_come_from_a_numbered_list_when_there_is_no_json_and_known_plans_are_dropped():
    reply = "Plans:\n1. Increase n_estimators to 400 for a steadier forest.\n2) Use the median for the gaps.\n" \
            "- Add the body mass per flipper length ratio."
    known = {"Use the median for the gaps."}
    assert replies.parse_plans(reply, known) == ["Increase n_estimators to 400 for a steadier forest.",
                                                 "Add the body mass per flipper length ratio."]
    with pytest.raises(ReplyError, match="already tried"):
        replies.parse_plans('["Use the median for the gaps."]', known)


def test_a_json_object_is_found_after_a_list_like_preamble():
    reply = 'The cards [as requested]: {"name": "lightgbm", "why": "fast"} done'
    assert replies.extract_json(reply, dict) == {"name": "lightgbm", "why": "fast"}
    with pytest.raises(ReplyError, match="no JSON list"):
        replies.extract_json("no json here at all", list)


def test_prose_replies_lose_fences_and_quotes_and_are_capped():
    assert replies.parse_text('"The model block matters most; preprocessing barely changes the score."') == \
        "The model block matters most; preprocessing barely changes the score."
    assert replies.parse_text("```\nAverage the probabilities of both candidates.\n```") == \
        "Average the probabilities of both candidates."
    assert len(replies.parse_text("word " * 1000, max_chars=100)) <= 104
    with pytest.raises(ReplyError, match="too short"):
        replies.parse_text("ok")


# --- prompts and options ------------------------------------------------------------------------------------------

def penguins_context() -> TaskContext:
    return TaskContext(name="penguins", goal="Predict the species. " * 200, task_type="classification",
                       metric="accuracy", maximize=True, proba=False, target="species", id_column="id",
                       prediction_columns=["species"], classes=["Adelie", "Chinstrap", "Gentoo"],
                       columns=[ColumnInfo(name="bill_length_mm", dtype="numeric", missing=0.01),
                                ColumnInfo(name="island", dtype="categorical")],
                       n_train=220, n_valid=55, n_test=69,
                       files=["train.csv", "valid.csv", "test.csv", "sample_submission.csv", "stores.csv"])


def test_the_contract_states_the_files_columns_and_score_line_for_the_task():
    text = prompting.contract_text(penguins_context(), timeout=120)
    assert "./input/train.csv" in text and "./input/valid.csv" in text and "./input/test.csv" in text
    assert "columns exactly id, species (the predicted label of species)" in text
    assert "Final Validation Performance: <accuracy on valid.csv as a float>" in text
    assert "stores.csv" in text and "120 seconds" in text
    assert "train.csv rows only" in text


def test_a_prompt_over_budget_is_cut_in_its_largest_part_and_keeps_the_fixed_text():
    template = "Fix this.\n{code}\nError:\n{error}\nReply with the script."
    code = "\n".join(f"x{i} = {i}" for i in range(400))
    error = "Traceback (most recent call last):\n" + "  line\n" * 200 + "ValueError: the real cause"
    text = render(template, {"code": Part(code, "ends", 200), "error": Part(error, "tail", 100)}, budget=1500)
    assert len(text) <= 1500
    assert text.startswith("Fix this.\nx0 = 0") and text.endswith("Reply with the script.")
    assert "x399 = 399" in text and "characters cut" in text
    assert "ValueError: the real cause" in text


def test_history_lists_the_best_plans_first_and_failures_last():
    history = [PlanRecord(plan="a", score=0.8, status="ok"), PlanRecord(plan="b", score=None, status="error"),
               PlanRecord(plan="c", score=0.9, status="ok")]
    assert prompting.history_text(history, maximize=True).splitlines() == ["- score 0.9: c", "- score 0.8: a",
                                                                           "- error: b"]


def test_a_registered_prompt_replaces_the_built_in_one_and_a_bad_field_names_the_plugin():
    registry = SimpleNamespace(prompts={"debug": "Fix {code} given {error} for {task}"},
                               owner=lambda kind, name: "my-prompts")
    policy = OpenAIPolicy({"model": "m", "base_url": "http://127.0.0.1:9/v1"}, registry=registry)
    assert policy.templates["debug"] == "Fix {code} given {error} for {task}"
    assert policy.templates["merge"] == prompting.builtin_template("merge")
    registry.prompts = {"debug": "Fix {code} in {language}"}
    with pytest.raises(PluginError, match=r"prompt 'debug' registered by plugin my-prompts uses unknown field "
                                          r"\{language\}"):
        OpenAIPolicy({"model": "m", "base_url": "http://127.0.0.1:9/v1"}, registry=registry)


def test_every_role_has_a_prompt_file_using_only_its_fields():
    for role in prompting.ROLES:
        text = prompting.builtin_template(role)
        text.format(**{f: "" for f in (*prompting.COMMON_FIELDS, *prompting.FIELDS[role])})


@pytest.mark.parametrize("options, message", [
    ({"model": "m", "base_url": "http://x/v1", "temprature": 0.1}, "unknown option 'temprature'"),
    ({"base_url": "http://x/v1"}, "option 'model' is required"),
    ({"model": "m", "base_url": "http://x/v1", "max_tokens": {"debugg": 10}}, "unknown role 'debugg'"),
    ({"model": "m", "base_url": "http://x/v1", "max_tokens": -3}, "'max_tokens' must be a positive integer"),
    ({"model": "m", "base_url": "http://x/v1", "temperature": "hot"}, "'temperature' must be a number"),
    ({"model": "m", "base_url": "ftp://x"}, "'base_url' must be an http"),
    ({"model": "m", "api_key_env": "MLESTAR_TEST_NO_SUCH_KEY"}, "MLESTAR_TEST_NO_SUCH_KEY is not set"),
])
def test_openai_options_are_checked_with_one_clear_line(options, message, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(PluginError, match=message):
        OpenAIPolicy(options)


def test_hf_options_are_checked_and_the_model_is_not_loaded_when_the_policy_is_built(tmp_path):
    with pytest.raises(PluginError, match="not a PEFT adapter folder"):
        HFPolicy({"adapter": str(tmp_path)})
    with pytest.raises(PluginError, match="unknown option 'gpu'"):
        HFPolicy({"gpu": True})
    policy = HFPolicy({"model": str(tmp_path / "nowhere"), "max_tokens": 8})
    assert policy.model is None and policy.max_tokens["debug"] == 8


def test_the_policies_are_registered_under_their_names(registry):
    assert {"openai", "hf"} <= set(registry.policies)
    assert registry.owner("policy", "hf") == "hf" and registry.owner("policy", "openai") == "openai"


def test_a_failed_load_makes_every_role_answer_none_without_raising(tmp_path):
    from core.store import RunStore

    store = RunStore(tmp_path / "runs.sqlite")
    policy = HFPolicy({"model": str(tmp_path / "nowhere")}, store=store, run_id="r1")
    assert policy.summarize_ablation(penguins_context(), AblationView()) is None
    assert policy.summarize_ablation(penguins_context(), AblationView()) is None
    calls = store.llm_calls("r1")
    assert [c["ok"] for c in calls] == [0, 0]
    assert all("not a model folder" in c["error"] for c in calls)
    assert json.loads(calls[0]["prompt"])[1]["content"].startswith("An ablation study")


# --- what SmolLM2 actually says (replies recorded from runs, shortened) ------------------------------------------

PLANNER_PROMPT = """Plans already tried, with their scores (do not repeat them; learn from what scored best):
- score 0.975: Increase n_estimators to 500.
- error: Use max_depth=4.
Reply with only a JSON list of 2 plan strings, for example: ["Replace ... with ...", "Add ..."]"""


def test_plans_echoed_from_the_prompt_or_left_as_placeholders_are_not_plans():
    reply = ("The ablation study found that the model block matters most.\n\n"
             "Plans already tried, with their scores (do not repeat them; learn from what scored best):\n"
             "- score 0.975: Increase n_estimators to 500.\n- error: Use max_depth=4.\n- list of 2 plan strings:\n"
             "- [Replace ... with ..., Add ..., Add]\n- [Add, Add, Add]\n- [Add, Add, Add]")
    known = {"Increase n_estimators to 500.", "Use max_depth=4."}
    with pytest.raises(ReplyError, match="copied from my message"):
        replies.parse_plans(reply, known, prompt=PLANNER_PROMPT)
    mixed = reply + "\n- Use balanced class weights so the rare Chinstrap penguins count more."
    assert replies.parse_plans(mixed, known, prompt=PLANNER_PROMPT) == [
        "Use balanced class weights so the rare Chinstrap penguins count more."]


def test_prose_that_loops_is_kept_once_and_prose_copied_from_the_prompt_is_refused():
    looping = ("A: A plan to combine the best features of multiple models to improve the accuracy.\n\n" * 4).strip()
    assert replies.parse_text(looping) == "A: A plan to combine the best features of multiple models to improve the " \
                                          "accuracy."
    with pytest.raises(ReplyError, match="repeats my message"):
        replies.parse_text("Plans already tried, with their scores (do not repeat them; learn from what scored best):"
                           "\n- score 0.975: Increase n_estimators to 500.", prompt=PLANNER_PROMPT)


def test_an_llm_summariser_sees_the_base_score_and_the_table_of_the_typed_ablation():
    from ablation import AblationRow, AblationSummary

    rows = [AblationRow(block_key="model#0", kind="model", action="simplify", description="plain", status="ok",
                        score=0.9, effect=0.07),
            AblationRow(block_key="train#0", kind="train", action="remove", description="none", status="error",
                        score=None, effect=None)]
    view = AblationSummary(base_score=0.97, maximize=True, rows=rows).view()
    assert prompting.base_score_text(penguins_context(), view.base_score) == \
        "Base validation score 0.97 (accuracy, higher is better)."
    assert prompting.base_score_text(penguins_context(), None) == ""
    table = view.table().splitlines()
    assert table[2].startswith("| model#0 | model | simplify | 0.9 | +0.07 |") and table[3].endswith("| error |")
