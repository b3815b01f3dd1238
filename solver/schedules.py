"""Learning-rate schedules: the lecture's step, cosine, linear and inverse square root.

A schedule gives the factor by which the base learning rate is multiplied at each training
step; the Solver sets ``learning_rate = base * factor`` before every update. Settings are in
epochs, as in the lecture; the factor is evaluated at step k with t = k / steps_per_epoch
epochs done and T = num_epochs in total (alpha_0 the base rate):

    constant      alpha_t = alpha_0 * decay^floor(t)              (the course's per-epoch lr_decay)
    step          alpha_t = alpha_0 * gamma^(number of milestones <= t)
    cosine        alpha_t = alpha_0 * (min_factor + (1 - min_factor) * (1 + cos(pi t / T)) / 2)
    linear        alpha_t = alpha_0 * (1 - (1 - min_factor) * t / T)
    inverse_sqrt  alpha_t = alpha_0 / sqrt(max(1, t))

Linear warmup, when ``warmup_epochs`` > 0, multiplies any of them by min(1, (k + 1) / W),
W = warmup_epochs * steps_per_epoch (at least one step): the rate climbs in equal steps from
alpha_0 / W to the schedule's value, and the schedule itself is not shifted.
"""

from __future__ import annotations

import math

from layers.validate import integer, real_number

__all__ = ["Schedule", "ConstantSchedule", "StepSchedule", "CosineSchedule", "LinearSchedule",
           "InverseSqrtSchedule", "SCHEDULES", "make_schedule"]


class Schedule:
    """Base class: a multiplicative learning-rate factor per step, with optional linear warmup.

    Subclasses implement ``_base(t, T)`` for t epochs done out of T.
    """

    name = "schedule"

    def __init__(self, warmup_epochs=0.0):
        self.warmup_epochs = real_number(type(self).__name__, "warmup_epochs", warmup_epochs, low=0.0)

    def factor(self, step, steps_per_epoch, num_epochs):
        """The learning-rate factor for one training step.

        Args:
            step: the 0-based index of the step about to be taken.
            steps_per_epoch: steps in one epoch (>= 1).
            num_epochs: epochs in the whole run (>= 1).

        Returns:
            A float factor (> 0 except where a schedule ends at 0).
        """
        fn = f"{type(self).__name__}.factor"
        step = integer(fn, "step", step, low=0)
        steps_per_epoch = integer(fn, "steps_per_epoch", steps_per_epoch, low=1)
        num_epochs = integer(fn, "num_epochs", num_epochs, low=1)
        t = step / steps_per_epoch
        f = self._base(t, num_epochs)
        if self.warmup_epochs > 0:
            warmup_steps = max(1, round(self.warmup_epochs * steps_per_epoch))
            f *= min(1.0, (step + 1) / warmup_steps)
        return float(f)

    def _base(self, t, T):
        raise NotImplementedError

    def _settings(self):
        return {"warmup_epochs": self.warmup_epochs}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._settings().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self._settings() == other._settings()


class ConstantSchedule(Schedule):
    """The course's lr_decay: multiply the rate by ``decay`` after every epoch (1.0 keeps it constant)."""

    name = "constant"

    def __init__(self, decay=1.0, warmup_epochs=0.0):
        super().__init__(warmup_epochs)
        try:
            self.decay = real_number("ConstantSchedule", "decay", decay, low=0.0, high=1.0)
        except ValueError:
            self.decay = 0.0  # out of range: reported below, in the one wording for (0, 1]
        if self.decay == 0:
            raise ValueError(f"ConstantSchedule: decay must be in (0, 1], got {float(decay)!r}.")

    def _base(self, t, T):
        return self.decay ** math.floor(t)

    def _settings(self):
        return {"decay": self.decay, **super()._settings()}


class StepSchedule(Schedule):
    """Multiply the rate by ``gamma`` at each milestone epoch (e.g. 0.1 at epochs 30, 60, 90)."""

    name = "step"

    def __init__(self, milestones, gamma=0.1, warmup_epochs=0.0):
        super().__init__(warmup_epochs)
        try:
            milestones = [real_number("StepSchedule", "milestones", m, low=0.0) for m in milestones]
        except TypeError:
            raise TypeError(f"StepSchedule: milestones must be a sequence of epochs, got {milestones!r}.") from None
        if milestones != sorted(milestones):
            raise ValueError(f"StepSchedule: milestones must be increasing, got {milestones}.")
        self.milestones = milestones
        self.gamma = real_number("StepSchedule", "gamma", gamma, low=0.0, high=1.0)

    def _base(self, t, T):
        return self.gamma ** sum(1 for m in self.milestones if t >= m)

    def _settings(self):
        return {"milestones": self.milestones, "gamma": self.gamma, **super()._settings()}


class _AnnealingSchedule(Schedule):
    """A schedule that falls from the base rate to ``min_factor`` times it over the run."""

    def __init__(self, min_factor=0.0, warmup_epochs=0.0):
        super().__init__(warmup_epochs)
        self.min_factor = real_number(type(self).__name__, "min_factor", min_factor, low=0.0, high=1.0)

    def _settings(self):
        return {"min_factor": self.min_factor, **super()._settings()}


class CosineSchedule(_AnnealingSchedule):
    """Cosine annealing from the base rate to ``min_factor`` times it over the run."""

    name = "cosine"

    def _base(self, t, T):
        return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * t / T))


class LinearSchedule(_AnnealingSchedule):
    """Linear decay from the base rate to ``min_factor`` times it over the run."""

    name = "linear"

    def _base(self, t, T):
        return 1 - (1 - self.min_factor) * t / T


class InverseSqrtSchedule(Schedule):
    """alpha_0 / sqrt(t): constant for the first epoch, then decaying as one over root t."""

    name = "inverse_sqrt"

    def _base(self, t, T):
        return 1 / math.sqrt(max(1.0, t))


SCHEDULES = {cls.name: cls for cls in
             (ConstantSchedule, StepSchedule, CosineSchedule, LinearSchedule, InverseSqrtSchedule)}


def make_schedule(name, num_epochs=None, warmup_epochs=0.0, **settings):
    """Build a schedule from its name, as the command line does.

    Args:
        name: "constant", "step", "cosine", "linear" or "inverse_sqrt".
        num_epochs: for "step" without milestones: the run's length, so that the rate drops
            by gamma at 50% and 75% of it.
        warmup_epochs: linear warmup length in epochs.
        settings: the schedule's own settings (decay, milestones, gamma, min_factor).

    Returns:
        A Schedule.
    """
    if name not in SCHEDULES:
        raise ValueError(f"make_schedule: name must be one of {sorted(SCHEDULES)}, got {name!r}.")
    if name == "step" and "milestones" not in settings:
        if num_epochs is None:
            raise ValueError("make_schedule: 'step' needs milestones or num_epochs.")
        settings["milestones"] = [0.5 * num_epochs, 0.75 * num_epochs]
    return SCHEDULES[name](warmup_epochs=warmup_epochs, **settings)
