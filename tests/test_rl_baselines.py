"""The reference policies and intervals of the learning figures, on hand-made option rewards: each reference picks
what it claims to, best-of-K counts the best of K replies, and the bootstrap interval covers what it should."""

from __future__ import annotations

import pytest

from rl.baselines import StateOptions, expected_best_of_random, fixed_preference, reference_rewards
from rl.stats import bootstrap, paired, seed_spread

TUNE = {"op": "tune", "args": {"member": 0}}
DEEPER = {"op": "set_params", "args": {"params": {"max_depth": 8}}}
SCALE = {"op": "set_preprocess", "args": {"scale": True}}


def state(task: str, *options: tuple[dict, float], nothing: float = 0.04) -> StateOptions:
    return StateOptions(step_id=f"{task}-{len(options)}-{options[0][1]}", task=task, options=list(options),
                        nothing=nothing)


def test_each_reference_policy_takes_what_it_claims_on_every_state():
    states = [state("a", (DEEPER, 0.4), (TUNE, 0.9), (SCALE, 0.5)), state("a", (SCALE, 0.7), (TUNE, 0.8))]
    trained_on = [state("b", (TUNE, 0.8), (DEEPER, 0.3)), state("b", (SCALE, 0.2), (TUNE, 0.7))]

    rows = reference_rewards(states, trained_on)

    assert rows["do nothing"] == [0.04, 0.04]
    assert rows["heuristic first"] == [0.4, 0.7]
    assert rows["random option"] == pytest.approx([0.6, 0.75])
    assert rows["best fixed preference"] == [0.9, 0.8]  # tune rated best on the other task's states
    assert rows["oracle"] == [0.9, 0.8]


def test_best_of_k_takes_the_best_of_the_first_k_options_and_the_expected_best_of_k_random_ones():
    states = [state("a", (DEEPER, 0.4), (SCALE, 0.5), (TUNE, 0.9))]

    rows = reference_rewards(states, states, k=2)

    assert rows["heuristic first"] == [0.5]
    # three pairs: {0.4, 0.5}, {0.4, 0.9}, {0.5, 0.9}
    assert rows["random option"] == pytest.approx([(0.5 + 0.9 + 0.9) / 3])
    assert expected_best_of_random([0.4, 0.5, 0.9], 3) == pytest.approx(0.9)
    assert expected_best_of_random([0.2, 0.2, 0.6, 0.6], 1) == pytest.approx(0.4)


def encoding(value: str) -> dict:
    return {"op": "set_preprocess", "args": {"encoding": value}}


def test_the_fixed_preference_key_is_chosen_on_the_training_tasks_held_out_in_turn():
    # Each task's menu names another encoding: the exact reply never recurs, the kind of change does.
    trained_on = [state("b", (SCALE, 0.6), (encoding("onehot"), 0.9), (DEEPER, 0.1)),
                  state("c", (SCALE, 0.6), (encoding("target"), 0.9), (DEEPER, 0.1))]
    held_out = [state("a", (SCALE, 0.5), (encoding("ordinal"), 0.8), (DEEPER, 0.3))]

    assert fixed_preference(held_out, trained_on) == ("kind", [0.8])
    # the held-out rewards play no part in the choice
    reversed_rewards = [state("a", (SCALE, 0.8), (encoding("ordinal"), 0.5), (DEEPER, 0.3))]
    assert fixed_preference(reversed_rewards, trained_on) == ("kind", [0.5])


def test_the_bootstrap_interval_holds_the_mean_and_narrows_with_more_states():
    few = bootstrap([0.2, 0.8, 0.5, 0.6])
    many = bootstrap([0.2, 0.8, 0.5, 0.6] * 25)

    assert few.low < few.mean < few.high and few.mean == pytest.approx(0.525)
    assert many.high - many.low < few.high - few.low
    assert bootstrap([0.5] * 10).low == bootstrap([0.5] * 10).high == 0.5


def test_a_paired_difference_is_significant_only_when_one_policy_wins_on_most_states():
    ahead = paired([0.7, 0.8, 0.75, 0.9, 0.7, 0.85] * 3, [0.6, 0.6, 0.7, 0.6, 0.65, 0.6] * 3)
    mixed = paired([0.7, 0.2, 0.75, 0.3], [0.3, 0.7, 0.2, 0.8])

    assert ahead.excludes_zero() and ahead.low > 0
    assert not mixed.excludes_zero()
    with pytest.raises(ValueError, match="same states"):
        paired([0.1], [0.1, 0.2])
    assert seed_spread([0.5, 0.7]) == pytest.approx((0.6, 0.1414), abs=1e-4)
