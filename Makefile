# chainrule: every target creates .venv on first use and installs what it needs, one stamp per level:
# runtime (numpy, scipy, matplotlib) for train and the tools, + test and cluster extras for test and grading,
# + notebooks extras (JupyterLab) for notebook. A level reinstalls when the package metadata changes.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP_RUNTIME   := $(VENV)/.installed-runtime
STAMP_TEST      := $(VENV)/.installed-test
STAMP_NOTEBOOKS := $(VENV)/.installed-notebooks

.PHONY: test test-quick train bench gradcheck download release grade autograder-zip notebook venv clean

test: $(STAMP_TEST)
	$(PY) -m pytest

# Under a minute: everything but the end-to-end grading, notebook, benchmark and training-command runs
# and the slowest unit checks (marked slow).
test-quick: $(STAMP_TEST)
	$(PY) -m pytest -q -m "not grading and not notebooks and not bench and not cli and not slow"

# The main job: train a FullyConnectedNet on the shipped digits set (python -m solver --help).
train: $(STAMP_RUNTIME)
	$(PY) -m solver $(ARGS)

# The performance suite against PyTorch CPU when torch is installed (e.g. .venv/bin/pip install torch==2.13.0);
# without it, our figures alone. Writes runs/bench/report.md and ratios.png, and rewrites docs/performance.md
# from the same report (not on a --quick run); never fails on a slow figure. make bench [ARGS="--repeats 5"]
# Focused benchmarks: python -m benchmarks.{train_epoch,batchnorm,conv,gradcheck,grading}
bench: $(STAMP_RUNTIME)
	$(PY) -m benchmarks $(if $(findstring --quick,$(ARGS)),,--docs docs/performance.md) $(ARGS)

# Check every registered layer and net against centered differences: make gradcheck [ARGS="--mode full"]
gradcheck: $(STAMP_RUNTIME)
	$(PY) -m gradcheck $(ARGS)

# Fetch and verify a dataset: make download DATASET=cifar10|mnist|fashion-mnist [DIR=...] [FORCE=1 to repair]
DATASET ?= cifar10
download: $(STAMP_RUNTIME)
	$(PY) -m data.download $(DATASET) $(if $(DIR),--dir $(DIR)) $(if $(FORCE),--force)

# The student version: make release OUT=../student [ARGS=--force]
OUT ?= student
release: $(STAMP_RUNTIME)
	$(PY) -m grading release $(OUT) $(ARGS)

# Grade a submission (the grader runs pytest): make grade SUBMISSION=path [RESULTS=results.json]
grade: $(STAMP_TEST)
	@test -n "$(SUBMISSION)" || { echo "make grade: set SUBMISSION=path/to/submission"; exit 2; }
	$(PY) -m grading grade $(SUBMISSION) $(if $(RESULTS),--results $(RESULTS)) $(ARGS)

# The Gradescope autograder: make autograder-zip [ZIP=autograder.zip]
ZIP ?= autograder.zip
autograder-zip: $(STAMP_TEST)
	$(PY) -m grading autograder-zip $(ZIP)

# JupyterLab on notebooks/, its python3 kernel being .venv's Python: make notebook [ARGS="--port 8889"]
notebook: $(STAMP_NOTEBOOKS)
	$(PY) -m jupyterlab --ServerApp.root_dir=notebooks $(ARGS)

venv: $(STAMP_RUNTIME)

#: Python compiles each module it imports on first use; compiling every installed
# file up front (scipy, matplotlib, jupyter) took 26 of a fresh setup's 64 s.
$(STAMP_RUNTIME): setup.cfg pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "chainrule needs Python >= 3.10; found " + sys.version.split()[0] + ". Run: make PYTHON=python3.X")'
	test -x $(PY) || { $(PYTHON) -m venv $(VENV) && $(PY) -m pip install --quiet --upgrade pip; }
	$(PY) -m pip install --quiet -e .
	touch $@

# The cluster extra (dask) comes too: the tests run search and batch grading on a real LocalCluster.
$(STAMP_TEST): $(STAMP_RUNTIME)
	$(PY) -m pip install --quiet -e '.[test,cluster]'
	touch $@

# The kernelspec goes into .venv (found before a user-wide python3 kernel), so the notebooks run on .venv.
$(STAMP_NOTEBOOKS): $(STAMP_RUNTIME)
	$(PY) -m pip install --quiet -e '.[notebooks]'
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (chainrule .venv)"
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
