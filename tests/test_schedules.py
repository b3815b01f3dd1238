"""Tests for solver.schedules: the lecture's learning-rate schedules and warmup."""

import math

import pytest

from solver.schedules import (
    ConstantSchedule,
    CosineSchedule,
    InverseSqrtSchedule,
    LinearSchedule,
    StepSchedule,
    make_schedule,
)

pytestmark = pytest.mark.schedules

EXACT = 1e-12
SPE = 10  # steps per epoch in these tests


def at_epoch(schedule, t, T=10):
    """The factor at t epochs done out of T, with SPE steps per epoch."""
    return schedule.factor(round(t * SPE), SPE, T)


def test_cosine_follows_half_a_cosine():
    """Cosine: 1 at t=0, 1/2 at T/2, (1 + cos(pi/4))/2 at T/4, and min_factor in the limit t=T."""
    s = CosineSchedule()
    assert at_epoch(s, 0) == 1.0
    assert at_epoch(s, 5) == pytest.approx(0.5, abs=EXACT)
    assert at_epoch(s, 2.5) == pytest.approx((1 + math.cos(math.pi / 4)) / 2, abs=EXACT)
    assert at_epoch(CosineSchedule(min_factor=0.1), 10) == pytest.approx(0.1, abs=EXACT)


def test_linear_decays_in_a_straight_line():
    """Linear: 1 - t/T, so 0.75 at T/4 and 0.5 at T/2; min_factor lifts the end."""
    assert at_epoch(LinearSchedule(), 2.5) == pytest.approx(0.75, abs=EXACT)
    assert at_epoch(LinearSchedule(), 5) == pytest.approx(0.5, abs=EXACT)
    assert at_epoch(LinearSchedule(min_factor=0.2), 5) == pytest.approx(0.6, abs=EXACT)


def test_step_drops_by_gamma_at_each_milestone():
    """Step with milestones 3 and 6: 1 before epoch 3, 0.1 from 3, 0.01 from 6."""
    s = StepSchedule([3, 6], gamma=0.1)
    assert at_epoch(s, 2.9) == 1.0
    assert at_epoch(s, 3) == pytest.approx(0.1, abs=EXACT)
    assert at_epoch(s, 5.9) == pytest.approx(0.1, abs=EXACT)
    assert at_epoch(s, 6) == pytest.approx(0.01, abs=EXACT)


def test_inverse_sqrt_is_one_over_root_t():
    """Inverse sqrt: 1 during the first epoch, then 1/sqrt(t): 0.5 at t=4."""
    s = InverseSqrtSchedule()
    assert at_epoch(s, 0) == 1.0 and at_epoch(s, 0.5) == 1.0
    assert at_epoch(s, 4) == pytest.approx(0.5, abs=EXACT)
    assert at_epoch(s, 9) == pytest.approx(1 / 3, abs=EXACT)


def test_constant_decay_matches_course_lr_decay():
    """ConstantSchedule(decay=d) multiplies by d once per completed epoch."""
    s = ConstantSchedule(decay=0.5)
    assert [at_epoch(s, t) for t in (0, 0.9, 1, 2.5, 3)] == [1.0, 1.0, 0.5, 0.25, 0.125]


def test_warmup_climbs_linearly_then_hands_over():
    """With 2 warmup epochs (20 steps) step k gets (k + 1) / 20 times the schedule, then the schedule."""
    s = CosineSchedule(warmup_epochs=2)
    plain = CosineSchedule()
    for k in (0, 9, 19, 25, 80):
        expected = min(1.0, (k + 1) / 20) * plain.factor(k, SPE, 10)
        assert s.factor(k, SPE, 10) == pytest.approx(expected, abs=EXACT)
    assert s.factor(0, SPE, 10) == pytest.approx(1 / 20, abs=EXACT)
    # A warmup shorter than a step still lasts one step and gives the full rate at once.
    assert LinearSchedule(warmup_epochs=0.01).factor(0, SPE, 10) == 1.0


def test_make_schedule_builds_each_named_schedule():
    """Names build the right classes; 'step' without milestones drops at 50% and 75% of the run."""
    assert make_schedule("cosine") == CosineSchedule()
    assert make_schedule("linear", warmup_epochs=1) == LinearSchedule(warmup_epochs=1)
    assert make_schedule("step", num_epochs=20) == StepSchedule([10, 15])
    assert make_schedule("inverse_sqrt") == InverseSqrtSchedule()
    assert make_schedule("constant", decay=0.9) == ConstantSchedule(decay=0.9)
    assert repr(StepSchedule([10, 15])) == "StepSchedule(milestones=[10.0, 15.0], gamma=0.1, warmup_epochs=0.0)"


def test_schedules_reject_bad_settings():
    """Bad names, warmup, milestones and factor arguments raise with the class named."""
    with pytest.raises(ValueError, match=r"make_schedule: name must be one of"):
        make_schedule("exponential")
    with pytest.raises(ValueError, match=r"make_schedule: 'step' needs milestones or num_epochs"):
        make_schedule("step")
    with pytest.raises(ValueError, match=r"CosineSchedule: warmup_epochs must be a finite number in \[0.0, inf\)"):
        CosineSchedule(warmup_epochs=-1)
    with pytest.raises(ValueError, match=r"StepSchedule: milestones must be increasing"):
        StepSchedule([6, 3])
    with pytest.raises(TypeError, match=r"StepSchedule: milestones must be a sequence of epochs"):
        StepSchedule(5)
    with pytest.raises(ValueError, match=r"ConstantSchedule: decay must be in \(0, 1\], got 0.0"):
        ConstantSchedule(decay=0)
    with pytest.raises(ValueError, match=r"CosineSchedule.factor: steps_per_epoch must be an int >= 1"):
        CosineSchedule().factor(0, 0, 10)
