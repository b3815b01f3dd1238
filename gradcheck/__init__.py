"""chainrule gradient checking: centered-difference numerical gradients and relative error.

``from gradcheck import eval_numerical_gradient_array, rel_error``, as in the course code.
"""

from gradcheck.numeric import (
    REL_ERROR_FLOOR,
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    grad_check_sparse,
    rel_error,
)

__all__ = [
    "REL_ERROR_FLOOR",
    "eval_numerical_gradient",
    "eval_numerical_gradient_array",
    "grad_check_sparse",
    "rel_error",
]
