"""The online score (fractalsweep.score) on hand-made loss sequences (docs/kernel.md, "Score")."""

import numpy as np
import pytest
import reference as ref

from fractalsweep import score


def _score(losses):
    out = score.from_losses(np.asarray(losses, dtype=np.float64))
    return {k: np.asarray(v).item() for k, v in out.items()}


def test_all_finite_converging():
    losses = [4.0, 2.0, 1.0]  # v = 1, 0.5, 0.25; mean of all three < 1
    out = _score(losses)
    assert out["score"] == pytest.approx(-(1 + 0.5 + 0.25), rel=1e-15)
    assert out["first_nonfinite"] == -1
    assert out["final_loss"] == 0.25


def test_inf_and_nan_count_as_big_then_clip():
    losses = [2.0, np.inf, 8.0, np.nan]  # v = 1, 5e5, 4, 5e5 -> diverged
    out = _score(losses)
    assert out["score"] == pytest.approx(1 + 2e-6 + 0.25 + 2e-6, rel=1e-15)
    assert out["first_nonfinite"] == 1
    assert out["final_loss"] == 5e5


def test_values_above_clip_are_clipped():
    losses = [1e-3, 1e4, 1e5]  # v = 1, 1e7 -> 1e6, 1e8 -> 1e6
    out = _score(losses)
    assert out["score"] == pytest.approx(1 + 1e-6 + 1e-6, rel=1e-15)
    assert out["final_loss"] == 1e6


def test_inf_initial_loss():
    out = _score([np.inf, 1e6, 5e5])  # l0 -> 1e6: v = 1, 1, 0.5; mean 0.833 < 1
    assert out["score"] == pytest.approx(-2.5, rel=1e-15)
    assert out["first_nonfinite"] == 0


def test_only_last_twenty_decide():
    # 30 steps: the first 10 blow up to the clip, the last 20 sit at 0.5: converged.
    losses = [1.0] + [1e9] * 9 + [0.5] * 20
    out = _score(losses)
    assert out["score"] == pytest.approx(-(1 + 9 * 1e6 + 20 * 0.5), rel=1e-15)
    # One step more at 1e9 inside the tail window pushes the tail mean above 1.
    out = _score([1.0] + [1e9] * 10 + [0.5] * 19)
    assert out["score"] == pytest.approx(1 + 10 * 1e-6 + 19 * 2, rel=1e-15)


def test_fewer_than_twenty_steps_use_all():
    out = _score([1.0, 1.5])  # mean 1.25 >= 1: diverged
    assert out["score"] == pytest.approx(1 + 1 / 1.5, rel=1e-15)
    out = _score([2.0])  # mean exactly 1: diverged (the test is strict)
    assert out["score"] == 1.0


def test_matches_reference_on_random_sequences():
    rng = np.random.default_rng(0)
    for _ in range(50):
        steps = int(rng.integers(1, 60))
        losses = np.exp(rng.normal(0, 8, steps))
        losses[rng.random(steps) < 0.1] = np.inf
        losses[rng.random(steps) < 0.1] = np.nan
        assert _score(losses)["score"] == pytest.approx(ref.score_from_losses(losses), rel=1e-12)
