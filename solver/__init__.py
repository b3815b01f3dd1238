"""chainrule training: update rules, learning-rate schedules, nets, the Solver and checkpoints.

    from solver import Solver, TwoLayerNet, FullyConnectedNet, optim
"""

from solver import optim, schedules
from solver.checkpoint import load_model, save_model
from solver.nets import FullyConnectedNet, TwoLayerNet
from solver.plotting import plot_history
from solver.schedules import (
    ConstantSchedule,
    CosineSchedule,
    InverseSqrtSchedule,
    LinearSchedule,
    StepSchedule,
    make_schedule,
)
from solver.solver import Solver

__all__ = [
    "optim", "schedules", "Solver", "TwoLayerNet", "FullyConnectedNet", "plot_history", "save_model",
    "load_model", "ConstantSchedule", "StepSchedule", "CosineSchedule", "LinearSchedule",
    "InverseSqrtSchedule", "make_schedule",
]
