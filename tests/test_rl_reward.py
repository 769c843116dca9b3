"""The step reward, case by case: format errors, runtime errors with partial credit, refused replies (no change, a
repeat) below any real attempt, and the sigmoid of the per-task-scaled, direction-signed metric gain."""

import math

import pytest

from rl.reward import NEUTRAL, PARTIAL_CREDIT, REFUSED, STAGES, Outcome, reward, sigmoid


def test_a_malformed_action_earns_nothing():
    assert reward(Outcome("malformed")) == 0.0


@pytest.mark.parametrize("status", ["error", "no_score", "invalid_submission", "invalid_predictions"])
def test_a_failing_script_that_got_nowhere_earns_nothing(status):
    assert reward(Outcome(status, prev_score=0.9)) == 0.0


def test_a_failing_script_earns_partial_credit_in_proportion_to_the_stages_it_finished():
    halfway = reward(Outcome("error", stages=("imports", "load_data", "preprocess")))
    almost = reward(Outcome("error", stages=("imports", "load_data", "preprocess", "model", "train")))
    assert halfway == pytest.approx(PARTIAL_CREDIT * 2 / len(STAGES))
    assert almost == pytest.approx(PARTIAL_CREDIT * 4 / len(STAGES))
    assert 0 < halfway < almost < PARTIAL_CREDIT


def test_a_script_that_failed_after_every_stage_earns_no_more_than_the_worst_valid_run():
    failing = reward(Outcome("invalid_predictions", stages=STAGES))
    much_worse = reward(Outcome("ok", score=0.10, prev_score=0.90, maximize=True, scale=0.01))
    assert failing == pytest.approx(PARTIAL_CREDIT)
    assert much_worse >= failing


@pytest.mark.parametrize("status", ["no_op", "repeat"])
def test_a_reply_the_pipeline_would_refuse_earns_no_more_than_a_script_that_failed_after_loading_its_data(status):
    refused = reward(Outcome(status, prev_score=0.5))
    failed_after_loading = reward(Outcome("error", prev_score=0.5, stages=("load_data",)))
    assert refused == REFUSED == pytest.approx(failed_after_loading)
    assert 0.0 < refused < PARTIAL_CREDIT


def test_doing_nothing_earns_less_than_a_valid_run_that_loses_badly():
    much_worse = reward(Outcome("ok", score=0.10, prev_score=0.90, maximize=True, scale=0.01))
    assert reward(Outcome("no_op")) < much_worse


@pytest.mark.parametrize("status", ["timeout", "out_of_memory"])
def test_a_timeout_or_running_out_of_memory_is_a_failure_with_credit_for_the_stages_it_finished(status):
    stuck_in_training = reward(Outcome(status, prev_score=0.5, stages=("load_data", "preprocess", "model")))
    assert stuck_in_training == pytest.approx(PARTIAL_CREDIT * 3 / len(STAGES))
    assert stuck_in_training < reward(Outcome("ok", score=0.49, prev_score=0.5, scale=0.01)) < NEUTRAL


def test_a_valid_run_with_no_gain_earns_the_neutral_reward():
    assert reward(Outcome("ok", score=0.8, prev_score=0.8, scale=0.01)) == pytest.approx(NEUTRAL)


def test_a_gain_of_one_typical_step_maps_through_the_sigmoid():
    got = reward(Outcome("ok", score=0.82, prev_score=0.80, maximize=True, scale=0.02))
    assert got == pytest.approx(PARTIAL_CREDIT + (1 - PARTIAL_CREDIT) * sigmoid(1.0))


def test_lower_is_better_metrics_reward_a_falling_score():
    better = reward(Outcome("ok", score=49.0, prev_score=50.0, maximize=False, scale=1.0))
    worse = reward(Outcome("ok", score=51.0, prev_score=50.0, maximize=False, scale=1.0))
    assert better > NEUTRAL > worse
    assert better - NEUTRAL == pytest.approx(NEUTRAL - worse)


def test_per_task_scaling_puts_accuracy_and_rmse_gains_on_one_scale():
    accuracy = reward(Outcome("ok", score=0.91, prev_score=0.90, maximize=True, scale=0.01))
    rmse = reward(Outcome("ok", score=48.5, prev_score=50.0, maximize=False, scale=1.5))
    assert accuracy == pytest.approx(rmse)


def test_rewards_stay_in_the_unit_interval_for_extreme_gains():
    huge = reward(Outcome("ok", score=1e9, prev_score=0.0, maximize=True, scale=1e-9))
    awful = reward(Outcome("ok", score=-1e9, prev_score=0.0, maximize=True, scale=1e-9))
    assert PARTIAL_CREDIT <= awful < huge <= 1.0


def test_a_valid_status_with_a_non_finite_score_is_treated_as_a_failure():
    assert reward(Outcome("ok", score=math.nan, prev_score=0.5)) == 0.0
