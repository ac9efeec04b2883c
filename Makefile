# LGVSC on GNU Radio. `make demo` runs the main job, `make test` the test suite; both set up first.
VENV := .venv
PY := $(VENV)/bin/python
DEMO_SNR ?= 10
DEMO_CBR ?= 1e-3

# `make report`: the quick evaluation grid from scratch, its plots and HTML, and the README's
# Results section (26.5 minutes on 2 cores, 2026-12-03): the probed grid, then links as they are (bikes): a
# transmitter planned for 10 dB received at 4, 8 and 10 dB, and Rayleigh fading after one stale probe.
# `make sweep-full` adds multipath, `make degradation` the whole 0-20 dB degradation grid and
# fading with a stale probe against feedback 1 and 5 ms old; both resumable.
REPORT_DIR ?= out/sweep-quick
FULL_DIR ?= out/sweep-full
DEGRADE_DIR ?= out/degradation
SWEEP_VIDEOS ?= bikes bigbuckbunny
# The report needs the figures, not each point's output video (3 s to write one of 720p):
# `make report REPORT_SWEEP_FLAGS=` keeps them in $(REPORT_DIR)/videos.
REPORT_SWEEP_FLAGS ?= --no-videos
DESIGN_SNR ?= 10

.PHONY: setup uninstall-grc demo test lint clean report report-resume sweep-full degradation

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

report:
	rm -rf $(REPORT_DIR)
	@$(MAKE) --no-print-directory report-resume

# The three grids run even when one has a failed point (a sweep retries its failed points when
# run again, and skips those done): `make report-resume` finishes a report without starting over.
report-resume: setup
	failed=0; \
	$(PY) -m tools.sweep --videos $(SWEEP_VIDEOS) --schemes lgvsc,h264,h265,av1 --snr-db 0,5,10,20 --cbr 1e-3,1e-4 \
		--channel awgn --out $(REPORT_DIR) $(REPORT_SWEEP_FLAGS) || failed=1; \
	$(PY) -m tools.sweep --videos bikes --schemes lgvsc,lgvsc-single,h265,av1 --snr-db 4,8,10 \
		--design-snr-db $(DESIGN_SNR) --cbr 1e-3 --channel awgn --out $(REPORT_DIR) $(REPORT_SWEEP_FLAGS) || failed=1; \
	$(PY) -m tools.sweep --videos bikes --schemes lgvsc,lgvsc-layered,h265,av1 --snr-db $(DESIGN_SNR) --cbr 1e-3 \
		--channel rayleigh --doppler 1e-5,1e-4 --out $(REPORT_DIR) $(REPORT_SWEEP_FLAGS) || failed=1; \
	if [ $$failed -ne 0 ]; then echo "a sweep failed (see above): 'make report-resume' retries its failed points"; exit 1; fi
	$(PY) -m tools.report $(REPORT_DIR) --readme README.md

DEGRADE_GRID := --videos $(SWEEP_VIDEOS) --schemes lgvsc,lgvsc-single,h264,h265,av1 \
	--snr-db 0,2,4,6,8,10,12,14,16,18,20 --design-snr-db $(DESIGN_SNR) --cbr 1e-3,3e-4 --out $(DEGRADE_DIR)

degradation: setup
	$(PY) -m tools.sweep $(DEGRADE_GRID) --channel awgn
	$(PY) -m tools.sweep $(DEGRADE_GRID) --channel rayleigh --doppler 1e-5,1e-4
	$(PY) -m tools.sweep --videos $(SWEEP_VIDEOS) --schemes lgvsc,h264,h265,av1 --snr-db $(DESIGN_SNR) \
		--cbr 1e-3,3e-4 --channel rayleigh --doppler 1e-5,1e-4 --feedback-delay-s none,0.001,0.005 --out $(DEGRADE_DIR)
	$(PY) -m tools.report $(DEGRADE_DIR)

sweep-full: setup
	$(PY) -m tools.sweep --videos $(SWEEP_VIDEOS) --schemes lgvsc,h264,h265,av1 --snr-db 0,5,10,20 --cbr 1e-3,1e-4 \
		--channel awgn,multipath --out $(FULL_DIR)
	$(PY) -m tools.report $(FULL_DIR)

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf out .pytest_cache build
