# PYTHON makes the project's virtual environment VENV (scripts/install.sh); everything else
# runs in it. Inside a virtual environment of your own: make test VENV=$VIRTUAL_ENV
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHON VENV

.PHONY: install demo test test-fast test-long fmt

install:
	bash scripts/install.sh

# The main job: check, summarise, render and compile the example specs.
demo: install
	bash scripts/demo.sh

# The test suite (what CI runs).
test: install
	$(PY) -m pytest -q -p no:cacheprovider

# While developing: everything but the tests marked slow (torchvision's models, the
# torch-backed properties, the wheel build); `make test` (CI) runs them all.
test-fast: install
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow"

# The long fuzzing run: 10,000 hypothesis examples per property (not in CI; ~30 min):
# arbitrary text, mutated zoo specs, random valid specs against torch (plain and optimize=True),
# the formatter's round trip, random networks against hand-built torch.nn ones.
test-long: install
	$(PY) -m pytest -q -p no:cacheprovider --hypothesis-profile=long \
		tests/test_robustness.py tests/test_random_specs.py tests/test_fmt.py \
		tests/test_differential.py
	$(PY) -m pytest -q -p no:cacheprovider --run-long -m long tests

# Keep the bundled specs in the canonical style (a test checks it).
fmt:
	$(PY) -m cnndsl fmt specs/*.cnn
