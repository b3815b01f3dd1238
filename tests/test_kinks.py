"""Tests for gradcheck.kinks: kink distances and drawing inputs clear of kinks."""

import numpy as np
import pytest

from gradcheck import (
    H_REL,
    KINK_MARGIN,
    check_layer,
    draw_clear_of_kinks,
    max_kink_distance,
    max_pool_kink_distance,
    relu_kink_distance,
    svm_kink_distance,
)
from layers import max_pool_backward_fast, max_pool_forward_fast

pytestmark = pytest.mark.gradcheck


def test_distances_to_each_kink():
    """relu: min |x|; max gate: min |x - y|; SVM: min |margin|; pooling: the smallest top-two gap."""
    assert relu_kink_distance(np.array([0.5, -0.2, 3.0])) == pytest.approx(0.2)
    assert max_kink_distance(np.array([1.0, 2.0]), np.array([1.5, 1.9])) == pytest.approx(0.1)
    x = np.array([[2.0, 1.2, 0.0]])
    assert svm_kink_distance(x, np.array([0])) == pytest.approx(0.2)  # 1.2 - 2 + 1
    pool = {"pool_height": 2, "pool_width": 2, "stride": 2}
    img = np.array([[[[1.0, 0.9, 5.0, 0.0], [0.0, 0.0, 1.0, 2.0], [0, 0, 0, 0], [0, 0, 3.0, 3.5]]]])
    assert max_pool_kink_distance(img, pool) == pytest.approx(0.0)  # the zero window ties
    img[0, 0, 2:, :2] = [[0.1, 0.2], [0.3, 0.4]]
    assert max_pool_kink_distance(img, pool) == pytest.approx(0.1)


def test_draw_clear_of_kinks_redraws_until_clear():
    """Draws that come within margin * h of a kink are replaced; the result is clear of kinks."""
    calls = []

    def draw(rng):
        calls.append(1)
        x = rng.standard_normal((5, 5))
        if len(calls) < 3:
            x[0, 0] = 0.0  # the first two draws sit on the kink
        return {"x": x}

    inputs = draw_clear_of_kinks(draw, lambda inp: relu_kink_distance(inp["x"]), seed=1)
    assert len(calls) >= 3 and relu_kink_distance(inputs["x"]) > KINK_MARGIN * H_REL * np.abs(inputs["x"]).max()


def test_draw_clear_of_kinks_gives_up_with_a_clear_message():
    """A draw that always lands on a kink raises after max_draws, giving the margin and best distance."""
    with pytest.raises(RuntimeError, match="no draw in 5 was more than 10 \\* h"):
        draw_clear_of_kinks(lambda rng: {"x": np.zeros(3)}, lambda inp: relu_kink_distance(inp["x"]), max_draws=5)
    with pytest.raises(ValueError, match="max_draws must be an int >= 1, got 0"):
        draw_clear_of_kinks(lambda rng: 0, lambda inp: 1.0, max_draws=0)


def test_max_pool_tie_is_a_kink_and_clear_inputs_have_none():
    """A tie inside a pooling window shows up as a kink; inputs drawn clear of ties show none."""
    pool = {"pool_height": 2, "pool_width": 2, "stride": 2}
    x = np.random.default_rng(0).standard_normal((1, 1, 4, 4))
    x[0, 0, 0, 1] = x[0, 0, 0, 0] = 3.0
    report = check_layer(max_pool_forward_fast, max_pool_backward_fast, {"x": x}, params={"pool_param": pool},
                         mode="full").assert_ok()
    assert report["x"].kinks
    clear = draw_clear_of_kinks(lambda rng: {"x": rng.standard_normal((2, 2, 4, 4))},
                                lambda inp: max_pool_kink_distance(inp["x"], pool))
    report = check_layer(max_pool_forward_fast, max_pool_backward_fast, clear, params={"pool_param": pool},
                         mode="full").assert_ok()
    assert not report["x"].kinks
