#!/usr/bin/env bash
# ci-matrix.sh: the portability matrix of CI (.ci/run calls it). Every source compiles with
# warnings as errors (-Werror) under each compiler and target below: the tool and its library
# (float and the double `_f64` copies), the Check suites, the benchmarks, the fuzz harnesses
# (compile only, -DLCG_FUZZ) and, where mpicc is installed, the MPI sweep. Then the fast unit
# suites run from the x86-64-v3 build, the build most laptops and pre-Zen-4 servers get.
#
#   gcc   -march=x86-64-v2, x86-64-v3, x86-64-v4, znver3   (build/ci/gcc-<march>/)
#   clang -march=native, x86-64-v3                          (build/ci/clang-<march>/)
#   aarch64-linux-gnu-gcc (Debian's cross compiler), compile only: every source, the suites and
#   benchmarks included; csv.h / check.h / check_stdint.h are the host's (architecture-free)
#   headers copied into a private include dir, nothing is linked. Installed here when missing;
#   skipped with a message when it cannot be installed.
#
# What it does not do: run anything but the fast unit suites (`make test` is .ci/run's), or
# judge speed. Prints each step's seconds and the total; exits non-zero on the first failure.
# Usage: scripts/ci-matrix.sh [-j N]   (default -j2)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=2
if [ "${1:-}" = -j ]; then jobs=$2; fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
FAST_SUITES="test_kernels test_entmax test_scaling test_model test_tasks"
ALL_SUITES=$({ make -pnq 2>/dev/null || true; } | sed -n 's/^TESTS := //p')
BENCHES=$(ls bench/*.c | grep -v '/peak\.c$' | sed 's|bench/||; s|\.c$||')
# the sources compiled twice (float, and double with -DLCG_F64)
REAL=$({ make -pnq 2>/dev/null || true; } | sed -n 's/^REAL_SRCS := //p')
# a Makefile without those variables: every suite file, and say that no _f64 copy is checked
[ -n "$ALL_SUITES" ] || ALL_SUITES=$(ls tests/test_*.c | sed 's|tests/||; s|\.c$||')
[ -n "$REAL" ] || echo "ci-matrix: no REAL_SRCS in the Makefile: aarch64 checks no -DLCG_F64 copy"
# the MPI sources (compiled with -DLCG_MPI through mpicc)
MPI_SRCS=$(grep -lE '^#(ifdef|ifndef|if).*LCG_MPI|<mpi\.h>' $(git ls-files '*.c' 2>/dev/null || find . -name '*.c' -not -path './build/*') | grep -v fuzz || true)
t_all=$(date +%s)
# the default build's ./lcgbench: the suites' PyTorch cross-check lists the registries' names with it
make --no-print-directory -j"$jobs" lcgbench >/dev/null

step() { # step NAME: times what follows until the next step
  local now; now=$(date +%s)
  if [ -n "${step_name:-}" ]; then printf 'ci-matrix: %-40s %4d s\n' "$step_name" $((now - step_t0)); fi
  step_name=$1 step_t0=$now
}

# build CC MARCH: the tool, every suite and benchmark in build/ci/CC-MARCH with -Werror, then
# compile-only the fuzz harnesses and (gcc, when mpicc is there) the MPI sources
build() {
  local cc=$1 march=$2 dir=build/ci/$1-$2
  local opt="-O3 -march=$march" flags="-std=c11 -Wall -Wextra -Werror -fopenmp -ffp-contract=fast -O3 -march=$march"
  step "$cc -march=$march"
  make --no-print-directory -j"$jobs" CC="$cc" BUILD="$dir" OPT="$opt" WERROR=1 \
    "$dir/lcgbench" $(for t in $ALL_SUITES; do echo "$dir/tests/$t"; done) \
    $(for b in $BENCHES; do echo "$dir/bench/$b"; done) >"$dir.log" 2>&1 || { cat "$dir.log"; exit 1; }
  for f in tests/fuzz/fuzz_*.c; do
    "$cc" $flags -DLCG_FUZZ -c -o /dev/null "$f" || exit 1
  done
  if [ "$cc" = gcc ] && command -v mpicc >/dev/null; then
    for f in $MPI_SRCS; do
      OMPI_CC=$cc mpicc $flags -DLCG_MPI -c -o /dev/null "$f" || exit 1
    done
  fi
}

mkdir -p build/ci
for m in x86-64-v2 x86-64-v3 x86-64-v4 znver3; do build gcc "$m"; done
if command -v clang >/dev/null && echo 'int main(void){return 0;}' | clang -fopenmp -x c - -o /dev/null 2>/dev/null; then
  for m in native x86-64-v3; do build clang "$m"; done
else
  # libomp-dev brings clang's OpenMP runtime (the fuzz targets need the same packages)
  ($SUDO apt-get update -qq && $SUDO apt-get install -y -qq clang libomp-dev) >/dev/null
  for m in native x86-64-v3; do build clang "$m"; done
fi

step "aarch64 compile check"
AARCH64_CC=aarch64-linux-gnu-gcc
if ! command -v $AARCH64_CC >/dev/null; then
  ($SUDO apt-get update -qq && $SUDO apt-get install -y -qq gcc-aarch64-linux-gnu) >/dev/null 2>&1 || true
fi
if command -v $AARCH64_CC >/dev/null; then
  inc=build/ci/aarch64-include
  mkdir -p "$inc"
  cp /usr/include/csv.h /usr/include/check.h /usr/include/check_stdint.h "$inc/"
  aflags="-std=c11 -Wall -Wextra -Werror -fopenmp -ffp-contract=fast -O3 -I$inc"
  n=0
  srcs=$(git ls-files '*.c' 2>/dev/null) || srcs=$(find . -path ./build -prune -o -name '*.c' -print | sed 's|^\./||')
  for f in $srcs; do
    case $f in */mpi.c | cuda/*) continue ;; esac # mpi.c needs the target's mpi.h; cuda/ is nvcc's
    d=""
    case $f in tests/fuzz/*) d=-DLCG_FUZZ ;; esac
    $AARCH64_CC $aflags $d -c -o /dev/null "$f" || exit 1
    n=$((n + 1))
    for r in $REAL; do
      [ "$r" = "$f" ] && { $AARCH64_CC $aflags -DLCG_F64 -c -o /dev/null "$f" || exit 1; n=$((n + 1)); }
    done
  done
  echo "ci-matrix: aarch64: $n translation units compiled (harness/mpi.c skipped: no target mpi.h)"
else
  echo "ci-matrix: aarch64 cross compiler not installable here: aarch64 check skipped"
fi

step "unit suites, gcc x86-64-v3 build"
for t in $FAST_SUITES; do
  CK_DEFAULT_TIMEOUT=600 build/ci/gcc-x86-64-v3/tests/$t
done
step done
echo "ci-matrix: all passed in $(($(date +%s) - t_all)) s"
