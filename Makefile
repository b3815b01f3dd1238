# chainrule: `make test` and `make train` each create .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test test-quick train bench gradcheck download release grade autograder-zip venv clean

test: $(STAMP)
	$(PY) -m pytest

# Under a minute: everything but the end-to-end grading, notebook, benchmark and training-command runs.
test-quick: $(STAMP)
	$(PY) -m pytest -q -m "not grading and not notebooks and not bench and not cli"

# The main job: train a FullyConnectedNet on the shipped digits set (python -m solver --help).
train: $(STAMP)
	$(PY) -m solver $(ARGS)

# The performance suite against PyTorch CPU when torch is installed (e.g. .venv/bin/pip install torch==2.13.0);
# without it, our figures alone. Writes runs/bench/report.md and ratios.png; never fails on a slow figure.
# Focused benchmarks: python -m benchmarks.{train_epoch,batchnorm,conv,gradcheck,grading}
bench: $(STAMP)
	$(PY) -m benchmarks $(ARGS)

# Check every registered layer and net against centered differences: make gradcheck [ARGS="--mode full"]
gradcheck: $(STAMP)
	$(PY) -m gradcheck $(ARGS)

# Fetch and verify a dataset: make download DATASET=cifar10|mnist|fashion-mnist [DIR=...]
DATASET ?= cifar10
download: $(STAMP)
	$(PY) -m data.download $(DATASET) $(if $(DIR),--dir $(DIR))

# The student version: make release OUT=../student [ARGS=--force]
OUT ?= student
release: $(STAMP)
	$(PY) -m grading release $(OUT) $(ARGS)

# Grade a submission: make grade SUBMISSION=path [RESULTS=results.json]
grade: $(STAMP)
	@test -n "$(SUBMISSION)" || { echo "make grade: set SUBMISSION=path/to/submission"; exit 2; }
	$(PY) -m grading grade $(SUBMISSION) $(if $(RESULTS),--results $(RESULTS)) $(ARGS)

# The Gradescope autograder: make autograder-zip [ZIP=autograder.zip]
ZIP ?= autograder.zip
autograder-zip: $(STAMP)
	$(PY) -m grading autograder-zip $(ZIP)

venv: $(STAMP)

# Reinstall whenever the package metadata changes.
$(STAMP): setup.cfg pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "chainrule needs Python >= 3.10; found " + sys.version.split()[0] + ". Run: make PYTHON=python3.X")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
