"""The hostile grading suite's attacks on the worker's own answers and limits, as source text.

Each is a body for ``hostile_attacks.replace_function`` (the dicts map (student file, function)
to it) or code for ``hostile_attacks.append``, with @TOKEN@ filled in by ``hostile_attacks.code``:
objects that lie about being equal, crashes of memory, the C stack and the channel, children that
outlive their worker, and floods of output. tests/test_hostile_limits.py plants them.
"""

# -- 7: objects that lie (function -> body of its replacement)
LIARS = {
    ("layers/activations.py", "relu_backward"): '''
        class Equal:  # equal to everything, an array of the wrong numbers
            def __eq__(self, other):
                return True

            def __ne__(self, other):
                return False

            __hash__ = object.__hash__

            def __array__(self, dtype=None, copy=None):
                return np.zeros(1)

        return Equal()
        ''',
    ("layers/dropout.py", "dropout_backward"): '''
        class Lying(np.ndarray):  # wrong numbers that claim to match anything
            def __eq__(self, other):
                return np.ones(np.shape(other), bool)

            def __array_ufunc__(self, ufunc, method, *inputs, **kw):
                return np.zeros(np.broadcast_shapes(*(np.shape(i) for i in inputs)))

            def __array_function__(self, func, types, f_args, f_kwargs):
                return True

            def __array__(self, dtype=None, copy=None):
                return np.zeros(self.shape)

            def __float__(self):
                return 0.0

        return np.zeros(np.shape(args[0])).view(Lying)
        ''',
    ("layers/losses.py", "svm_loss"): '''
        class Loss(float):  # a float that equals everything and is never far from anything
            def __eq__(self, other):
                return True

            __hash__ = float.__hash__

            def __float__(self):
                return 1.0

            def __sub__(self, other):
                return 0.0

            __rsub__ = __sub__

            def __abs__(self):
                return 0.0

        loss, dx = _original(*args, **kwargs)
        return Loss(loss + 1.0), dx
        ''',
    ("solver/optim.py", "rmsprop"): '''
        import numpy.testing  # every comparison this process could make now says "equal"
        np.allclose = np.array_equal = lambda *a, **k: True
        np.isclose = lambda a, b, *x, **k: np.ones(np.broadcast_shapes(np.shape(a), np.shape(b)), bool)
        np.abs = np.absolute = np.fabs = lambda x, *a, **k: np.zeros(np.shape(x))
        np.isfinite = lambda x, *a, **k: np.ones(np.shape(x), bool)
        np.testing.assert_allclose = np.testing.assert_array_equal = lambda *a, **k: None
        w, config = _original(*args, **kwargs)
        return w + 1.0, config
        ''',
    ("solver/optim.py", "adam"): '''
        import sys

        class Peek:  # an array that is whatever the caller expects, found in its frames
            def __array__(self, dtype=None, copy=None):
                frame = sys._getframe()
                while frame is not None:
                    for name in ("expected", "ref", "reference", "want"):
                        if name in frame.f_locals:
                            return np.asarray(frame.f_locals[name], dtype=dtype)
                    frame = frame.f_back
                return np.zeros(1)

        w, config = _original(*args, **kwargs)
        return Peek(), config
        ''',
}


# -- 9, 10, 13: memory, the C stack, the channel
CRASHES = {
    ("layers/activations.py", "relu_backward"): '''
        import sys  # C recursion (through a method wrapper) with no recursion limit: a segfault
        sys.setrecursionlimit(10**6)

        def deeper():
            return deeper.__call__()

        return deeper()
        ''',
    ("solver/optim.py", "sgd_momentum"): '''
        huge = np.ones(6 * 2**30 // 8)  # 6 GiB, over the 4096 MiB limit
        return _original(*args, **kwargs)
        ''',
    ("layers/losses.py", "svm_loss"): '''
        import os, stat, struct  # a frame header claiming 2**62 bytes, then the honest answer
        for fd in map(int, os.listdir("/proc/self/fd")):
            try:
                if stat.S_ISSOCK(os.fstat(fd).st_mode):
                    os.write(fd, struct.pack("<Q", 2**62))
            except OSError:
                pass
        return _original(*args, **kwargs)
        ''',
    ("solver/optim.py", "adam"): '''
        import os, random, stat  # random bytes on the channel, then the honest answer
        garbage = random.Random(16).randbytes(4096)
        for fd in map(int, os.listdir("/proc/self/fd")):
            try:
                if stat.S_ISSOCK(os.fstat(fd).st_mode):
                    os.write(fd, garbage)
            except OSError:
                pass
        return _original(*args, **kwargs)
        ''',
    ("layers/dropout.py", "dropout_backward"): '''
        return np.zeros((16, 1024, 1024))  # a 128 MiB answer, over the 64 MiB frame cap
        ''',
}


# -- 11, 12: children and floods
CHILDREN = '''
def _hostile_children():
    import os, subprocess
    for _ in range(50):  # sleeping children named after the attack
        try:
            subprocess.Popen(["@TOKEN@", "300"], executable="/bin/sleep", stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            break
    try:
        pid = os.fork()
    except OSError:
        return
    if pid == 0:  # a double-forked daemon in a session of its own
        try:
            os.setsid()
            if os.fork() == 0:
                os.execv("/bin/sleep", ["@TOKEN@-daemon", "300"])
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    try:
        pid = os.fork()
    except OSError:
        return
    if pid == 0:  # a child that keeps every descriptor, the channel's included, and sleeps
        try:
            for fd in map(int, os.listdir("/proc/self/fd")):
                try:
                    os.set_inheritable(fd, True)
                except OSError:
                    pass
            os.execv("/bin/sleep", ["@TOKEN@-channel", "300"])
        finally:
            os._exit(0)


_hostile_children()
'''
FLOOD = '''
import os as _hostile_os

_hostile_megabyte = (b"@TOKEN@ flood\\n" * 70_000)[:1_000_000]
for _hostile_fd in (1, 2):  # 25 MB on stdout and on stderr at import
    for _ in range(25):
        _hostile_os.write(_hostile_fd, _hostile_megabyte)
'''
