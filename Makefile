# LGVSC on GNU Radio. `make demo` runs the main job, `make test` the test suite; both set up first.
VENV := .venv
PY := $(VENV)/bin/python
DEMO_SNR ?= 10
DEMO_CBR ?= 1e-3

.PHONY: setup demo test lint clean

setup:
	@bash tools/setup.sh

demo: setup
	@mkdir -p out
	$(VENV)/bin/lgvsc loopback "$$($(PY) -m tools.sample_videos bikes)" -o out/demo.mp4 \
		--snr-db $(DEMO_SNR) --cbr $(DEMO_CBR) --report out/report.json --html out/report.html

test: setup
	$(PY) -m pytest -q tests; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf out .pytest_cache build/grc_cache
