# Thin wrapper over CMake and ctest. A newcomer needs one of two commands:
#   make run    install the Debian packages, build, serve http://127.0.0.1:2001/
#   make test   install the Debian packages, build, run every test twice:
#               once on the normal build, once under ASan/UBSan (+ fuzzing);
#               then the threaded parts once more under TSan
# Other targets: make deps | build | bench | clean

BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
# Integration tests pick their own free ports, so ctest may run them side by side.
CTEST_JOBS ?= 2

CMAKE_FLAGS = -DPython3_EXECUTABLE=/usr/bin/python3 -DTREMOLO_WERROR=ON
ASAN_FLAGS  = $(CMAKE_FLAGS) -DCMAKE_C_COMPILER=clang -DTREMOLO_SANITIZE=ON \
              -DTREMOLO_WITH_JEMALLOC=OFF -DTREMOLO_FUZZ=ON
SAN_ENV     = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
              UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
TSAN_FLAGS  = $(CMAKE_FLAGS) -DCMAKE_C_COMPILER=clang -DTREMOLO_TSAN=ON \
              -DTREMOLO_PLUGINS_SHARED_COPIES=OFF
TSAN_ENV    = TSAN_OPTIONS=suppressions=$(CURDIR)/tests/tsan.supp:halt_on_error=1:second_deadlock_stack=1
# One test at a time: TSan slows the server several-fold, and two heavy
# tests side by side on 2 cores can starve a test node past 3 x PingFreq
# (1.5 s), which fails its sessions over. The run takes about as long.
TSAN_CTEST_JOBS ?= 1
# Where threads meet: the channels between workers and the gateway, the
# gateway and its nodes, WebSocket sessions on the gateway, socket.io
# sessions reached from any worker, reload and stop
# (the browser test is left to the other two runs: too slow under TSan).
TSAN_TESTS  = ^unit/(mk_core/mk_channel|mk_core/mk_event|mk_core/mk_clock|mk_server/mk_http_date|mk_server/mk_session|plugins/zmq/|plugins/websocket/)|^integration/test_(plugin_zmq|plugin_websocket$$|plugin_websocket_groups|plugin_websocket_transport|core_lifecycle|socketio_python_node|plugin_http2$$)

.PHONY: all build deps run test test-build test-asan test-tsan bench clean

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
	@PYTHONPATH=docs/examples:$(BUILD)/python /usr/bin/python3 \
	    plugins/zmq/nodes/python/tremolo_wsgi.py welcome_app:app \
	    --id demo-1 --connect tcp://127.0.0.1:5000 & node=$$!; \
	trap 'kill $$node 2>/dev/null' EXIT INT TERM; \
	$(BUILD)/tremolo -c conf/tremolo.conf

test:
	$(MAKE) deps
	sh tests/js/setup.sh
	$(MAKE) test-build
	$(MAKE) test-asan
	$(MAKE) test-tsan

test-build: build
	cd $(BUILD) && ctest --output-on-failure -j$(CTEST_JOBS)

test-asan:
	cmake -S . -B $(ASAN_BUILD) $(ASAN_FLAGS)
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && $(SAN_ENV) ctest --output-on-failure -j$(CTEST_JOBS)

test-tsan:
	cmake -S . -B $(TSAN_BUILD) $(TSAN_FLAGS)
	cmake --build $(TSAN_BUILD) -j$(JOBS)
	cd $(TSAN_BUILD) && $(TSAN_ENV) ctest --output-on-failure \
	    -j$(TSAN_CTEST_JOBS) -R '$(TSAN_TESTS)'

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
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD)
