"""Hostile submissions that lie, exit, crash, flood or hang inside the worker, graded end to end.

Each attack costs exactly the tests that reach it and nothing more: the same checks as
tests/test_hostile.py (the exact score, a valid results.json listing every graded test, a
bounded wall time, no process of the submission left), on the reference solution with a few
functions replaced by an attack (tests/hostile_payloads.py).
"""

from __future__ import annotations

import json
import shutil

import pytest
from grading_support import failed_tests, fill_with_reference

from grading import manifest, sandbox
from hostile_attacks import MARK, append, code, replace_function
from hostile_payloads import CHILDREN, CRASHES, FLOOD, LIARS
from hostile_support import (DROPOUT_BACKWARD, FIRST_STEP, RELU_BACKWARD, SHORT_TIMEOUT_S, SVM_LOSS, assert_lost,
                             grade_hostile, in_full, lost, names, new_token, optim_lost)
from hostile_support import solved, token  # noqa: F401 - fixtures, used by name

pytestmark = pytest.mark.grading


# -- 7: objects that lie
def test_lying_objects_and_patched_numpy_gain_nothing(solved, tmp_path, token):
    """__eq__ always True, a lying ndarray subclass and float, numpy's comparisons patched, frame peeking."""
    for (rel, name), body in LIARS.items():
        append(solved, rel, code(MARK, token))
        replace_function(solved, rel, name, body, token)
    results = grade_hostile(solved, tmp_path / "out", token)
    assert_lost(results, lost(RELU_BACKWARD, DROPOUT_BACKWARD, SVM_LOSS, optim_lost("rmsprop", "adam")))


# -- 8: exits at import and in calls
def test_exits_cost_only_the_tests_that_reach_them(solved, tmp_path, token):
    """os._exit at import of losses.py, sys.exit at import of optim.py, os._exit, SystemExit, KeyboardInterrupt in calls."""
    append(solved, "layers/losses.py", code(MARK, token), "import os\nos._exit(0)\n")
    append(solved, "solver/optim.py", code(MARK, token), "import sys\nsys.exit(3)\n")
    for rel, name, body in (("layers/dropout.py", "dropout_backward", "import os\nos._exit(0)"),
                            ("layers/activations.py", "relu_backward", "raise SystemExit(1)"),
                            ("layers/normalization.py", "layernorm_backward", "raise KeyboardInterrupt")):
        append(solved, rel, code(MARK, token))
        replace_function(solved, rel, name, body, token)
    results = grade_hostile(solved, tmp_path / "out", token)
    assert_lost(results, lost(in_full(names("softmax", "svm", "losses", "test_optim.py", "layernorm")),
                              DROPOUT_BACKWARD, RELU_BACKWARD))


# -- 9, 10, 13, 14: memory, the C stack, the channel; an import that never ends
CRASHES_LOST = lost(RELU_BACKWARD, SVM_LOSS, DROPOUT_BACKWARD, optim_lost("sgd_momentum", "adam"))
# layers/conv.py looping at import: the conv, max_pool (pooling imports conv) and net tests (sandwich does).
ENDLESS_IMPORT_LOST = in_full(names("test_conv_", "test_max_pool_", "test_nets.py"))


@pytest.fixture(scope="module")
def crashed(release_tree, tmp_path_factory):
    """results.json of the reference solution with CRASHES' functions and a layers/conv.py that loops at import.

    The two attacks reach disjoint tests (CRASHES_LOST, ENDLESS_IMPORT_LOST) and both run at the short
    limit, so they are graded once, together: the submission must lose exactly the union of the two.
    """
    token = new_token()
    tmp = tmp_path_factory.mktemp("crashed")
    tree = fill_with_reference(shutil.copytree(release_tree, tmp / "submission"))
    for (rel, name), body in CRASHES.items():
        append(tree, rel, code(MARK, token))
        replace_function(tree, rel, name, body, token)
    append(tree, "layers/conv.py", code(MARK, token), "while True:\n    pass\n")
    return grade_hostile(tree, tmp / "out", token, timeout=SHORT_TIMEOUT_S)


def test_memory_stack_and_channel_attacks_cost_only_their_tests(crashed):
    """6 GiB, a segfault, a 2**62-byte header, random bytes and a 128 MiB frame: only those functions' tests fail.

    Graded beside the endless import below: together they lose exactly the union of what each costs.
    """
    assert_lost(crashed, lost(CRASHES_LOST, ENDLESS_IMPORT_LOST))
    outputs = json.dumps(crashed)
    assert "MemoryError" in outputs and "exit code -11" in outputs and "over the cap" in outputs


def test_endless_import_costs_only_the_tests_that_need_the_module(crashed):
    """layers/conv.py loops at import: the conv, max_pool (pooling imports conv) and net tests (sandwich does) fail.

    The first to import it runs out its time; the later ones fail at once, without trying it again.
    """
    assert {n: p for n, p in failed_tests(crashed).items()
            if n.startswith(("test_conv.py", "test_nets.py"))} == ENDLESS_IMPORT_LOST
    assert "while importing layers.conv" in json.dumps(crashed)
    assert "needs layers.conv, which could not be imported in an earlier test" in json.dumps(crashed)


# -- 11, 12: children and floods
def test_children_floods_and_a_call_at_the_full_limit_cost_only_their_tests(solved, tmp_path, token):
    """50 sleeping children, a daemon and a channel holder at import, 50 MB printed, a call past the limit.

    relu_backward exits while a child holds the channel open: its tests are lost at once, and no
    child survives. adam sleeps in the first-step test's call: that test is lost at the limit
    (6 s here), and the next one, whose worker was started ahead and has by then waited longer
    than a worker may take to start (4 s here, as 30 s is to the default 30 s limit), still passes.
    """
    assert manifest.TEST_TIMEOUT_S >= sandbox.STARTUP_S  # the case this scales down
    append(solved, "layers/activations.py", code(MARK, token), code(CHILDREN, token))
    replace_function(solved, "layers/activations.py", "relu_backward", "import os\nos._exit(0)", token)
    append(solved, "layers/normalization.py", code(MARK, token), code(FLOOD, token))
    replace_function(solved, "layers/normalization.py", "batchnorm_forward",
                     "import os\nos.write(1, b'x' * 1_000_000)\nos.write(2, b'y' * 1_000_000)\n"
                     "return _original(*args, **kwargs)", token)
    append(solved, "solver/optim.py", code(MARK, token))
    replace_function(solved, "solver/optim.py", "adam", '''
        import time
        config = args[2] if len(args) > 2 else kwargs.get("config") or {}
        if config.get("learning_rate") == 1e-3:  # the first-step test's call
            time.sleep(3600)
        return _original(*args, **kwargs)
        ''', token)
    seen: set[str] = set()
    results = grade_hostile(solved, tmp_path / "out", token, seen=seen, timeout=6,
                            env={sandbox.STARTUP_ENV: "4"})
    assert_lost(results, lost(RELU_BACKWARD, {FIRST_STEP["adam"]: 1.0}))
    outputs = json.dumps(results)
    assert "relu_backward: the submission's process ended during the call" in outputs
    assert "timed out; the test's calls ran past its limit of 6 s" in outputs
    # They did run: the marked workers, at least 50 sleepers at once, the daemon and the channel holder.
    assert any("/boot/worker.py" in p for p in seen), sorted(seen)[:5]
    assert sum(f"b'{token}\\x00300" in p for p in seen) >= 50
    for suffix in ("-daemon", "-channel"):
        assert any(f"b'{token}{suffix}\\x00" in p for p in seen), sorted(seen)[:5]
