"""solver.tune_allocator: argument checks, and the page faults it removes (measured in subprocesses)."""

import json
import re
import subprocess
import sys
import textwrap

import pytest

from solver import tune_allocator
from solver.memory import _glibc

# Minor page faults per batchnorm forward+backward at 256 x 1024 float32, in the steady state.
# Tuned: the freed arrays are reused, so next to none (a stray fault from Python's own
# allocations is allowed). Default glibc settings measured about 1,000 here.
TUNED_FAULTS_PER_STEP = 5.0
DEFAULT_OVER_TUNED = 10.0

WORKLOAD = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    import layers
    from solver import tune_allocator
    applied = tune_allocator() if sys.argv[1] == "tuned" else None
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 1024), dtype=np.float32)
    gamma, beta = np.ones(1024, np.float32), np.zeros(1024, np.float32)

    def step():
        out, cache = layers.batchnorm_forward(x, gamma, beta, {"mode": "train"})
        layers.batchnorm_backward_alt(out, cache)

    for _ in range(20):
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(100):
        step()
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 100
    print(json.dumps({"applied": applied, "faults": faults}))
""")


@pytest.mark.parametrize("kwargs, message", [
    ({"trim_mib": 0}, "trim_mib (MiB) must be an int in [1, 4096], got 0."),
    ({"trim_mib": 1.5}, "trim_mib (MiB) must be an int in [1, 4096], got 1.5."),
    ({"mmap_mib": 33}, "mmap_mib (MiB) must be an int in [1, 32], got 33."),
    ({"mmap_mib": True}, "mmap_mib (MiB) must be an int in [1, 32], got True."),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=r"^tune_allocator: " + re.escape(message) + "$"):
        tune_allocator(**kwargs)


def _faults(mode):
    run = subprocess.run([sys.executable, "-c", WORKLOAD, mode], capture_output=True, text=True, timeout=120,
                         check=False)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.mark.slow
@pytest.mark.skipif(_glibc() is None, reason="mallopt thresholds exist only in glibc")
def test_tuned_allocator_removes_the_page_faults_of_fresh_arrays():
    tuned, default = _faults("tuned"), _faults("default")
    assert tuned["applied"] is True
    assert tuned["faults"] <= TUNED_FAULTS_PER_STEP, tuned
    assert default["faults"] > DEFAULT_OVER_TUNED * max(tuned["faults"], 1.0), (default, tuned)


@pytest.mark.skipif(_glibc() is not None, reason="on glibc the settings apply")
def test_elsewhere_nothing_changes():
    assert tune_allocator() is False
