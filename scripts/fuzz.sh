#!/usr/bin/env bash
# Builds the libFuzzer targets of the message decoders (cpp/fuzz/fuzz_*.cc) with
# clang + AddressSanitizer, seeds each from valid messages made by the encoders,
# and runs each target for N seconds (default 20). Fails on any crash, leak,
# sanitizer report or decoder invariant violation.
#
#   scripts/fuzz.sh        # 20 s per target
#   scripts/fuzz.sh 600    # the longer run (docs/formats.md)
#
# Built apart from the CMake tree: the Sabot format sources and Arrow from the
# pyarrow wheel in .venv, into build/fuzz (override with FUZZ_BUILD_DIR).
set -euo pipefail

SECONDS_PER_TARGET=${1:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CXX=${CXX:-clang++-14}
OUT=${FUZZ_BUILD_DIR:-$ROOT/build/fuzz}
PY=$ROOT/.venv/bin/python
TARGETS=(json avro ipc csv)

if ! command -v "$CXX" >/dev/null 2>&1 ||
  ! ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "fuzz.sh: installing clang-14 and libclang-rt-14-dev"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clang-14 libclang-rt-14-dev >/dev/null
fi

read -r PA_INC PA_LIB PA_SO < <("$PY" -c \
  "import pyarrow as pa; print(pa.get_include(), pa.get_library_dirs()[0], pa.cpp_build_info.so_version)")

mkdir -p "$OUT/obj"
FLAGS=(-std=c++20 -O1 -g -fno-omit-frame-pointer -I"$ROOT/cpp/src" -I"$ROOT/cpp/fuzz" -I"$PA_INC")
# libsimdjson before Arrow: the wheel exports its own, incompatible simdjson symbols.
LIBS=(-lsimdjson -L"$PA_LIB" -l:libarrow.so."$PA_SO" -Wl,-rpath,"$PA_LIB")

# The format sources, instrumented for coverage and ASan (two at a time).
SOURCES=()
for src in "$ROOT"/cpp/src/sabot/formats/*.cc; do
  [[ "$src" == *_test.cc ]] || SOURCES+=("$src")
done
OBJS=()
for src in "${SOURCES[@]}"; do
  obj="$OUT/obj/$(basename "${src%.cc}").o"
  OBJS+=("$obj")
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ "$ROOT/scripts/fuzz.sh" -nt "$obj" ] ||
    [ -n "$(find "$ROOT/cpp/src/sabot/formats" -name '*.h' -newer "$obj")" ]; then
    "$CXX" "${FLAGS[@]}" -fsanitize=address,fuzzer-no-link -c "$src" -o "$obj" &
    while [ "$(jobs -rp | wc -l)" -ge 2 ]; do wait -n; done
  fi
done
wait

for t in "${TARGETS[@]}"; do
  "$CXX" "${FLAGS[@]}" -fsanitize=address,fuzzer "$ROOT/cpp/fuzz/fuzz_$t.cc" "${OBJS[@]}" \
    "${LIBS[@]}" -o "$OUT/fuzz_$t" &
  while [ "$(jobs -rp | wc -l)" -ge 2 ]; do wait -n; done
done
"$CXX" "${FLAGS[@]}" -fsanitize=address "$ROOT/cpp/fuzz/fuzz_corpus.cc" "${OBJS[@]}" \
  "${LIBS[@]}" -o "$OUT/fuzz_corpus"
wait

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK"/{json,avro,ipc,csv} "$WORK/artifacts"
ASAN_OPTIONS=detect_leaks=0 "$OUT/fuzz_corpus" "$WORK"

# The system allocator lets ASan and libFuzzer's malloc limit see Arrow's buffers.
export ARROW_DEFAULT_MEMORY_POOL=system
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
status=0
for t in "${TARGETS[@]}"; do
  log="$WORK/fuzz_$t.log"
  if "$OUT/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=4096 \
    -malloc_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$WORK/artifacts/$t-" \
    "$WORK/$t" >"$log" 2>&1; then
    execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
    cov=$(grep -E '^#[0-9]+.*DONE' "$log" | tail -1 | grep -oE 'cov: [0-9]+' || true)
    echo "fuzz_$t: ok, ${execs:-?} execs in ${SECONDS_PER_TARGET} s ($cov)"
  else
    status=1
    echo "fuzz_$t: FAILED"
    tail -40 "$log"
    mkdir -p "$OUT/crashes"
    cp "$WORK"/artifacts/"$t"-* "$OUT/crashes/" 2>/dev/null &&
      echo "  reproducer(s) copied to $OUT/crashes/"
  fi
done
exit $status
