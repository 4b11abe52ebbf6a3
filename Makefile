# Thin wrapper over CMake and ctest. A newcomer needs one of two commands:
#   make run    install the Debian packages, build, serve http://127.0.0.1:2001/
#   make test   install the Debian packages, build, run every test twice:
#               once on the normal build, once under ASan/UBSan (+ fuzzing)
# Other targets: make deps | build | bench | clean

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
# Integration tests pick their own free ports, so ctest may run them side by side.
CTEST_JOBS ?= 2

CMAKE_FLAGS = -DPython3_EXECUTABLE=/usr/bin/python3 -DTREMOLO_WERROR=ON
ASAN_FLAGS  = $(CMAKE_FLAGS) -DCMAKE_C_COMPILER=clang -DTREMOLO_SANITIZE=ON \
              -DTREMOLO_WITH_JEMALLOC=OFF -DTREMOLO_FUZZ=ON
SAN_ENV     = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
              UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

.PHONY: all build deps run test test-build test-asan bench clean

all: build

deps:
	sh packaging/deps.sh

build:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j$(JOBS)

# Each step is its own sub-make so that `make -j run` still goes in order.
# The demo node answers /node/ (see conf/sites/default.conf); it stops with
# the server.
run:
	$(MAKE) deps
	$(MAKE) build
	@PYTHONPATH=docs/examples /usr/bin/python3 \
	    plugins/zmq/nodes/python/tremolo_wsgi.py welcome_app:app \
	    --id demo-1 --connect tcp://127.0.0.1:5000 & node=$$!; \
	trap 'kill $$node 2>/dev/null' EXIT INT TERM; \
	$(BUILD)/tremolo -c conf/tremolo.conf

test:
	$(MAKE) deps
	sh tests/js/setup.sh
	$(MAKE) test-build
	$(MAKE) test-asan

test-build: build
	cd $(BUILD) && ctest --output-on-failure -j$(CTEST_JOBS)

test-asan:
	cmake -S . -B $(ASAN_BUILD) $(ASAN_FLAGS)
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && $(SAN_ENV) ctest --output-on-failure -j$(CTEST_JOBS)

# Benchmarks are not tests: they print figures and ratios, they do not fail
# on a slow machine. Each tests/bench/*.sh gets the binary and the tree.
bench:
	$(MAKE) deps
	sh tests/js/setup.sh
	$(MAKE) build
	@set -e; for s in tests/bench/*.sh; do \
	    case "$$s" in */lib.sh) continue;; esac; \
	    echo "== $$s"; \
	    TREMOLO_BIN="$(CURDIR)/$(BUILD)/tremolo" TREMOLO_SRC="$(CURDIR)" \
	        bash "$$s"; \
	done

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
