"""The step reward, case by case: format errors, runtime errors with partial credit, neutral corner cases, and the
sigmoid of the per-task-scaled, direction-signed metric gain."""

import math

import pytest

from rl.reward import NEUTRAL, PARTIAL_CREDIT, STAGES, Outcome, reward, sigmoid


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


@pytest.mark.parametrize("status", ["timeout", "out_of_memory", "no_op"])
def test_timeouts_out_of_memory_and_actions_that_change_nothing_are_neutral(status):
    assert reward(Outcome(status, prev_score=0.5)) == NEUTRAL


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
