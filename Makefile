# mixbridge: `make demo` sets up and runs the main job on the bundled demo; `make test` sets up and runs the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
MB := $(VENV)/bin/mixbridge
DEMO_DIR ?= demo
OUT_DIR ?= out
SONGS ?= 3

.PHONY: setup demo test bench clean
setup:
	bash scripts/setup.sh

demo: setup
	$(MB) demo build -o $(DEMO_DIR) --songs $(SONGS)
	$(PY) scripts/run_demo.py --demo $(DEMO_DIR) -o $(OUT_DIR)

test: setup
	$(VENV)/bin/ruff check .
	$(PY) scripts/typecheck.py
	$(PY) -m pytest -q -ra

bench: setup
	$(PY) scripts/bench_render.py

clean:
	rm -rf $(OUT_DIR) .pytest_cache
