"""Graded: FullyConnectedNet, TwoLayerNet and ThreeLayerConvNet losses and gradients.

The nets are graded with the grader's own affine, relu and softmax layers standing in for the
student's (``student.use_standins``), so a broken layer costs only the layer's own points. The
public way to check a net with your own layers is ``python -m gradcheck``.
"""

from __future__ import annotations

# BEGIN HIDDEN TESTS
import numpy as np
import pytest
from grading_checks import assert_matches, check_net

STANDINS = ["affine_forward", "affine_backward", "relu_forward", "relu_backward", "softmax_loss"]
NETS = {  # the small nets of grading/reference.py: constructor and keyword arguments
    "FullyConnectedNet": ("solver.FullyConnectedNet", ([6, 5],),
                          dict(input_dim=8, num_classes=4, reg=0.3, weight_scale=0.5, dtype=np.float64, seed=0)),
    "TwoLayerNet": ("solver.TwoLayerNet", (),
                    dict(input_dim=8, hidden_dim=6, num_classes=4, weight_scale=0.5, reg=0.2, dtype=np.float64, seed=0)),
    "ThreeLayerConvNet": ("solver.ThreeLayerConvNet", (),
                          dict(input_dim=(2, 6, 6), num_filters=3, filter_size=3, hidden_dim=5, num_classes=4,
                               weight_scale=0.3, reg=0.1, dtype=np.float64, seed=0)),
}


@pytest.mark.points(6)
@pytest.mark.parametrize("kind", list(NETS))
def test_net_loss_and_gradients_match_reference(student, reference, kind):
    """With the reference's parameters, loss, scores and every gradient match the reference."""
    ref = reference(kind)
    student.use_standins(STANDINS)
    target, args, kwargs = NETS[kind]
    model = student.model(target, *args, **kwargs)
    for name in model.params:
        assert f"param_{name}" in ref, f"{kind}.params has an unexpected entry {name!r}"
        model.params[name] = ref[f"param_{name}"].copy()
    scores = model.loss(ref["X"])
    assert_matches(f"{kind}.loss scores", scores, ref["scores"])
    result = model.loss(ref["X"], ref["y"])
    assert isinstance(result, tuple) and len(result) == 2, f"{kind}.loss(X, y) must return (loss, grads)"
    loss, grads = result
    assert_matches(f"{kind}.loss loss", loss, ref["loss"])
    assert isinstance(grads, dict), f"{kind}.loss: grads must be a dict, got {type(grads).__name__}"
    missing = sorted(set(model.params) - set(grads))
    assert not missing, f"{kind}.loss: grads lacks {missing}"
    for name in model.params:
        assert_matches(f"{kind}.loss grads[{name!r}]", grads[name], ref[f"grad_{name}"])


@pytest.mark.points(3)
@pytest.mark.parametrize("kind", list(NETS))
def test_net_gradients_match_numeric_gradient(student, kind):
    """Every parameter's gradient agrees with centered differences of the loss."""
    rng = np.random.default_rng(11)
    student.use_standins(STANDINS)
    target, args, kwargs = NETS[kind]
    shape = (3, 8) if kind != "ThreeLayerConvNet" else (3, 2, 6, 6)
    check_net(student, target, rng.standard_normal(shape), rng.integers(0, 4, size=3), *args, **kwargs).assert_ok()
# END HIDDEN TESTS
