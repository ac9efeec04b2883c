# LGVSC on GNU Radio. `make demo` runs the main job, `make test` the test suite; both set up first.
VENV := .venv
PY := $(VENV)/bin/python
DEMO_SNR ?= 10
DEMO_CBR ?= 1e-3

# `make report`: the quick evaluation grid from scratch (21 minutes on 2 cores), its plots and
# HTML, and the README's Results section. `make sweep-full` adds multipath, resumably.
REPORT_DIR ?= out/sweep-quick
FULL_DIR ?= out/sweep-full
SWEEP_VIDEOS ?= bikes bigbuckbunny

.PHONY: setup uninstall-grc demo test lint clean report sweep-full

setup:
	@bash tools/setup.sh

# Removes the links `make setup` made for GRC (~/.grc_gnuradio, the user site-packages).
uninstall-grc:
	@bash tools/install_grc.sh --uninstall

demo: setup
	@mkdir -p out
	$(VENV)/bin/lgvsc loopback "$$($(PY) -m lgvsc.sample_videos bikes)" -o out/demo.mp4 \
		--snr-db $(DEMO_SNR) --cbr $(DEMO_CBR) --report out/report.json --html out/report.html

test: setup
	$(PY) -m pytest -q tests; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

report: setup
	rm -rf $(REPORT_DIR)
	$(PY) -m tools.sweep --videos $(SWEEP_VIDEOS) --schemes lgvsc,h264,h265,av1 --snr-db 0,5,10,20 --cbr 1e-3,1e-4 \
		--channel awgn --out $(REPORT_DIR)
	$(PY) -m tools.report $(REPORT_DIR) --readme README.md

sweep-full: setup
	$(PY) -m tools.sweep --videos $(SWEEP_VIDEOS) --schemes lgvsc,h264,h265,av1 --snr-db 0,5,10,20 --cbr 1e-3,1e-4 \
		--channel awgn,multipath --out $(FULL_DIR)
	$(PY) -m tools.report $(FULL_DIR)

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf out .pytest_cache build
