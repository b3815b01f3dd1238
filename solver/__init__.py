"""chainrule training: update rules, learning-rate schedules, nets, the Solver and checkpoints.

    from solver import Solver, TwoLayerNet, FullyConnectedNet, ThreeLayerConvNet, optim
    from solver import visualize_grid  # the course's vis_utils.visualize_grid (solver.plotting)
    from solver import tune_allocator  # once per process, before a training loop of your own (solver.memory)
    from solver import search  # hyperparameter search over the training command (solver.tuning)
"""

from solver import optim, schedules
from solver.checkpoint import load_model, save_model
from solver.memory import tune_allocator
from solver.cnn import ThreeLayerConvNet
from solver.nets import FullyConnectedNet, TwoLayerNet
from solver.plotting import plot_history, visualize_grid
from solver.schedules import (
    ConstantSchedule,
    CosineSchedule,
    InverseSqrtSchedule,
    LinearSchedule,
    StepSchedule,
    make_schedule,
)
from solver.solver import Solver
from solver.tuning import search

__all__ = [
    "optim", "schedules", "Solver", "TwoLayerNet", "FullyConnectedNet", "ThreeLayerConvNet", "plot_history",
    "visualize_grid", "save_model", "load_model", "ConstantSchedule", "StepSchedule", "CosineSchedule",
    "LinearSchedule", "InverseSqrtSchedule", "make_schedule", "tune_allocator",
    "search",
]
