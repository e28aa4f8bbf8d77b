# pumpsim: `make run` shows the pump emulated; `make test` runs the whole suite.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BOARD ?= emu
PORT ?=
RUN_DIR ?= run/demo

.PHONY: run test check bench soak mutants flash build clean

$(BIN)/.installed: pyproject.toml node_modules/.installed
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

# The node side (the rp2040js target, pyright) from the lockfile; without npm the unix-port
# target still works, and the rp2040js target says what is missing.
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: the rp2040js target and pyright need node >= 18 and npm" >&2; fi

# The board's MicroPython stubs for `make check`, pinned in typings/rpi_pico.txt: in a folder of
# their own, never in .venv, where their stdlib (sys, io, time, ...) would shadow CPython's.
STUBS := typings/rpi_pico
$(STUBS)/.installed: typings/rpi_pico.txt | $(BIN)/.installed
	rm -rf $(STUBS)
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --target $(STUBS)/lib/site-packages \
		-r typings/rpi_pico.txt
	touch $@

# labgrid, for a farm of benches (docs/farm.md), in a venv of its own: its pins are not ours.
LABGRID_VENV ?= .venv-labgrid
$(LABGRID_VENV)/bin/.installed: requirements-labgrid.txt
	$(PY) -m venv $(LABGRID_VENV)
	$(LABGRID_VENV)/bin/pip install -q --disable-pip-version-check -r requirements-labgrid.txt
	touch $@

run: $(BIN)/.installed
	$(BIN)/pumpsim demo --dir $(RUN_DIR)

# One worker per core: each test boots its own virtual boards from the one image of the run.
PYTEST_ARGS ?= -n auto

# Then, when the official RPI_PICO firmware is given (PUMPSIM_RP2_FIRMWARE, PUMPSIM_RP2_BOOTROM:
# docs/usage.md), the real-time subset and docs/testing.md's examples again on official
# MicroPython on an emulated RP2040, and
# on the emulated bench of two Picos, the rig Pico running boards/rig_pico (docs/bench.md).
test: $(BIN)/.installed $(STUBS)/.installed $(LABGRID_VENV)/bin/.installed
	$(BIN)/pytest $(PYTEST_ARGS)
	@if [ -n "$$PUMPSIM_RP2_FIRMWARE" ]; then \
	    echo "the real-time subset on --pumpsim-target rp2040js"; \
	    $(BIN)/pytest $(PYTEST_ARGS) --pumpsim-target rp2040js tests/hil/test_realtime.py tests/hil/test_testing_doc.py && \
	    echo "the real-time subset on --pumpsim-target bench" && \
	    $(BIN)/pytest $(PYTEST_ARGS) --pumpsim-target bench tests/hil/test_realtime.py; \
	else echo "PUMPSIM_RP2_FIRMWARE not set: the real-time subset ran on the virtual board only (docs/usage.md)"; fi

# pyright on firmware/ against the RPI_PICO board's MicroPython API (firmware/pyrightconfig.json);
# needs node and npm. CI runs it before the tests.
check: $(BIN)/.installed $(STUBS)/.installed
	$(BIN)/python -m pumpsim.typecheck

bench: $(BIN)/.installed
	$(BIN)/python -m pumpsim.hil.bench --write docs/benchmarks.md

# The mutation gate: every curated mutant of tests/mutants.py must be killed by its tests, or
# have its reason in docs/safety.md ("Mutation gate").
mutants: $(BIN)/.installed
	$(BIN)/python -m pumpsim.hil.mutants

build: $(BIN)/.installed
	$(BIN)/pumpsim build --board $(BOARD)

flash: $(BIN)/.installed
	@test -n "$(PORT)" || { echo "usage: make flash BOARD=rpi_pico PORT=/dev/ttyACM0" >&2; exit 2; }
	$(BIN)/pumpsim deploy --board $(BOARD) --port $(PORT)

clean:
	rm -rf build run

# Years of clinic life against the reference model (hil/model.py); figures into docs/benchmarks.md.
soak: $(BIN)/.installed
	$(BIN)/python -m pumpsim.hil.soak --write docs/benchmarks.md
