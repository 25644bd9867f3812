# Sabot: `make demo` and `make test` work on a fresh Debian 12 machine.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
PYBIN := $(VENV)/bin/python
BUILD := build/release
export CCACHE_SLOPPINESS := pch_defines,time_macros,include_file_mtime,include_file_ctime
export CCACHE_DIR ?= $(HOME)/.cache/ccache

SOURCES := $(shell find cpp examples/cpp -name '*.cc' -o -name '*.h' 2>/dev/null) CMakeLists.txt pyproject.toml

.PHONY: all deps build demo test test-cpp test-python lint format bench clean kafka-up kafka-down \
	fuzz-short fuzz postgres-up postgres-down chaos chaos-short
.PHONY: flink-jar nexmark-compare

all: build

$(VENV)/.sysdeps: scripts/install-system-deps.sh
	@mkdir -p $(VENV)
	bash scripts/install-system-deps.sh
	@touch $@

$(VENV)/.requirements: requirements.txt $(VENV)/.sysdeps
	@test -x $(PYBIN) || $(PY) -m venv $(VENV)
	$(PYBIN) -m pip install -q --upgrade pip==24.3.1
	$(PYBIN) -m pip install -q -r requirements.txt
	@touch $@

deps: $(VENV)/.requirements

# Builds the C++ core, the Python extension, the C++ tests and examples in one
# CMake tree (build/release) and installs the package into .venv in editable mode.
$(VENV)/.built: $(VENV)/.requirements $(SOURCES)
	$(PYBIN) -m pip install -q --no-build-isolation --no-deps -e . \
	  -Ccmake.define.SABOT_BUILD_TESTS=ON
	@touch $@

build: $(VENV)/.built

demo: build
	$(VENV)/bin/sabot demo

test-cpp: build
	cd $(BUILD) && ctest --output-on-failure -j2

test-python: build
	$(PYBIN) -m pytest -q

lint: build
	$(VENV)/bin/ruff check python tests examples bench
	$(VENV)/bin/ruff format --check python tests examples bench
	clang-format --dry-run -Werror $$(find cpp examples/cpp -name '*.cc' -o -name '*.h')

# The Kafka broker and the PostgreSQL server run for the whole test run and are
# stopped afterwards, also when a step fails (unless they were already up before);
# the exit status is the tests'.
test: build flink-jar
	@was_up=0; bash scripts/kafka.sh status >/dev/null 2>&1 && was_up=1; \
	  pg_was_up=0; bash scripts/postgres.sh status >/dev/null 2>&1 && pg_was_up=1; \
	  bash scripts/kafka.sh up >/dev/null || exit 1; status=0; \
	  bash scripts/postgres.sh up >/dev/null || status=1; \
	  [ $$status != 0 ] || SABOT_REQUIRE_KAFKA=1 SABOT_REQUIRE_POSTGRES=1 \
	    $(MAKE) --no-print-directory test-cpp test-python chaos-short fuzz-short lint || status=$$?; \
	  [ $$pg_was_up = 1 ] || bash scripts/postgres.sh down; \
	  [ $$was_up = 1 ] || bash scripts/kafka.sh down; exit $$status

# libFuzzer over every message decoder: a short run in `make test`, a long one by hand.
fuzz-short: build
	bash scripts/fuzz.sh 10

fuzz: build
	bash scripts/fuzz.sh 600

# Exactly-once chaos run (tests/chaos/chaos.py): the worker is killed with SIGKILL and
# restarted, the broker restarted once; the output must equal the reference exactly.
# It starts its own broker (first free port from 29092). Short run in `make test`, long one here.
chaos-short: build
	$(PYBIN) tests/chaos/chaos.py --kills 20 --report build/chaos/short.json

chaos: build
	$(PYBIN) tests/chaos/chaos.py --kills 100 --rate 3000 --report build/chaos/last_run.json

# A single-node Kafka 4.x broker (KRaft) on 127.0.0.1:19092 from Maven Central jars.
kafka-up: $(VENV)/.sysdeps
	@bash scripts/kafka.sh up

kafka-down:
	@bash scripts/kafka.sh down

# A PostgreSQL 15 server (Debian package) on 127.0.0.1:15432, data in build/postgres.
postgres-up: $(VENV)/.sysdeps
	@bash scripts/postgres.sh up

postgres-down:
	@bash scripts/postgres.sh down

format: deps
	$(VENV)/bin/ruff format python tests examples bench
	$(VENV)/bin/ruff check --fix python tests examples bench
	clang-format -i $$(find cpp examples/cpp -name '*.cc' -o -name '*.h')

bench: build
	$(PYBIN) bench/run_benchmarks.py

# Nexmark on Sabot and on Apache Flink side by side (bench/nexmark_vs_flink.py, flink-bench):
# every query on both engines, parallelism 1 and 2, same events; writes the
# nexmark-vs-flink section of docs/benchmarks.md and docs/img/nexmark_vs_flink.png.
.PHONY: bench-nexmark-flink
NEXMARK_FLINK_EVENTS ?= 1000000
bench-nexmark-flink: build
	$(PYBIN) bench/nexmark_vs_flink.py --events $(NEXMARK_FLINK_EVENTS)

# Faust: faust-streaming vs Sabot (per-record and batch paths) on the same broker
# and topic (bench/faust_bench.py, docs/benchmarks.md "Faust vs Sabot");
# faust-streaming goes into .venv-faust from bench/requirements-faust.txt.
.PHONY: bench-faust
bench-faust: build
	$(PYBIN) bench/faust_bench.py --report build/faust_bench.json

clean:
	rm -rf build $(VENV)/.built

# --- Nexmark vs Apache Flink (bench/flink, scripts/flink.sh, docs/nexmark_flink.md) ---
# The Flink runner's jar (Maven, from Maven Central); skipped where Java or Maven is missing
# (tests/python/test_nexmark_flink.py then skips too).
flink-jar: $(VENV)/.sysdeps
	@if command -v javac >/dev/null && command -v mvn >/dev/null; then bash scripts/flink.sh jar >/dev/null; \
	  else echo "flink-jar: javac or mvn not found; the Flink comparison is skipped"; fi

# Every Nexmark query on Sabot and on Flink over the same EVENTS events; compares results.
EVENTS ?= 1000000
nexmark-compare: build flink-jar
	$(PYBIN) bench/nexmark_compare.py --events $(EVENTS)
