"""chainrule gradient checking: one-call layer and model checks with a report that explains,
plus the course's centered-difference helpers.

``from gradcheck import check_layer`` checks a forward/backward pair in one call;
``from gradcheck import eval_numerical_gradient_array, rel_error`` as in the course code.
"""

from gradcheck.check import (
    DEFAULT_PROBES,
    H_REL,
    RTOL,
    GradcheckWarning,
    check_layer,
    check_loss,
    check_model,
    default_step,
)
from gradcheck.kinks import (
    KINK_MARGIN,
    draw_clear_of_kinks,
    max_kink_distance,
    max_pool_kink_distance,
    relu_kink_distance,
    svm_kink_distance,
)
from gradcheck.numeric import (
    REL_ERROR_FLOOR,
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    eval_numerical_gradient_blobs,
    eval_numerical_gradient_net,
    grad_check_sparse,
    rel_error,
)
from gradcheck.report import CheckReport, InputReport, SideCheck

__all__ = [
    "CheckReport",
    "DEFAULT_PROBES",
    "GradcheckWarning",
    "H_REL",
    "InputReport",
    "KINK_MARGIN",
    "REL_ERROR_FLOOR",
    "RTOL",
    "SideCheck",
    "check_layer",
    "check_loss",
    "check_model",
    "default_step",
    "draw_clear_of_kinks",
    "eval_numerical_gradient",
    "eval_numerical_gradient_array",
    "eval_numerical_gradient_blobs",
    "eval_numerical_gradient_net",
    "grad_check_sparse",
    "max_kink_distance",
    "max_pool_kink_distance",
    "rel_error",
    "relu_kink_distance",
    "svm_kink_distance",
]
