# lcgbench — build, test, run. `make run` and `make test` install missing Debian packages
# first (apt-get; sudo when not root), then build. Plain `make` only builds.

CC      ?= gcc
OPT     ?= -O3 -march=native
# WERROR=1 (CI) makes warnings errors; a user's build never fails on a new compiler's warning
WERROR  ?=
# BUILD: where objects, tests and benchmarks go. Another BUILD (with its own OPT, say) is an
# independent tree: its binaries are $(BUILD)/lcgbench and $(BUILD)/lcgbench-mpi (the default
# build's are ./lcgbench and ./lcgbench-mpi, which the tests drive). Within one BUILD, changing
# CC, OPT or EXTRA_CFLAGS rebuilds everything ($(BUILD)/cflags records them).
BUILD   ?= build
WARN    := -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror)
# the flags every build shares; each build adds its optimization (and sanitizers) to them
STD_FLAGS := -std=c11 $(WARN) -fopenmp
CFLAGS  := $(STD_FLAGS) -ffp-contract=fast $(OPT) $(EXTRA_CFLAGS)
DEPFLAGS := -MMD -MP
LDLIBS  := -lcsv -lm
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)
BIN     := $(if $(filter build,$(BUILD)),,$(BUILD)/)

# Debian packages the build and tests need (OpenMP comes with gcc)
DEPS_PKGS := gcc make pkg-config libcsv-dev check
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Sources are found, not listed: the library is every .c of kernels/, model/, tasks/ and
# harness/; the commands every .c of cli/ (mpi.c only in lcgbench-mpi). A GPU build (cuda/,
# *.cu, tests/test_gpu*) is never picked up here: it plugs in through cuda/cuda.mk (CUDA=1).
# Files that include kernels/real.h are compiled twice: float (the tool) and double (`_f64`,
# the finite-difference gradient checks); every binary links both (the row-function table of
# kernels/registry.c names the two).
LIB_SRCS  := $(sort $(wildcard kernels/*.c model/*.c tasks/*.c harness/*.c))
REAL_SRCS := $(sort $(shell grep -l '^\#include "\(\.\./kernels/\)\?real\.h"' $(LIB_SRCS)))
MPI_ONLY  := cli/mpi.c
CLI_SRCS  := $(filter-out $(MPI_ONLY),$(sort $(wildcard cli/*.c)))
# the cli files built again with -DLCG_MPI for lcgbench-mpi
MPI_SRCS  := $(sort $(shell grep -l 'LCG_MPI' $(CLI_SRCS)))
objs = $(patsubst %.c,$(1)/%.o,$(2))
LIB_OBJS := $(call objs,$(BUILD),$(LIB_SRCS)) $(patsubst %.c,$(BUILD)/%_f64.o,$(REAL_SRCS))
CLI_OBJS := $(call objs,$(BUILD),$(CLI_SRCS))
MPI_OBJS := $(filter-out $(call objs,$(BUILD),$(MPI_SRCS)),$(CLI_OBJS)) $(call objs,$(BUILD)/mpi,$(MPI_SRCS) $(MPI_ONLY))
TESTS := $(filter-out test_gpu%,$(patsubst tests/%.c,%,$(sort $(wildcard tests/test_*.c))))
TEST_BINS := $(addprefix $(BUILD)/tests/,$(TESTS))

# MPI=1: also lcgbench-mpi, the same tool whose sweep spreads cells over MPI ranks (OpenMPI;
# the default build needs no MPI). `make test` builds it too whenever mpicc is installed, so
# test_sweep can compare mpirun against the serial sweep (it skips that part without it).
MPI     ?=
MPICC   ?= mpicc
MPI_PKGS := openmpi-bin libopenmpi-dev
ifeq ($(MPI),1)
DEPS_PKGS += $(MPI_PKGS)
endif
HAVE_MPICC := $(shell command -v $(MPICC) >/dev/null 2>&1 && echo 1)
MPI_BIN := $(if $(filter 1,$(MPI) $(HAVE_MPICC)),$(BIN)lcgbench-mpi)

# the quick default job of `make run`
RUN_ARGS ?= --task copy --attn softmax --pos rope

.PHONY: all deps run test test-asan bench clean plots report regress regress-update mini fuzz fuzz-build fuzz-deps valgrind FORCE
all: $(BIN)lcgbench $(if $(filter 1,$(MPI)),$(BIN)lcgbench-mpi)

# the GPU build's hook: cuda/cuda.mk adds its objects and targets (CUDA=1)
CUDA ?=
ifeq ($(CUDA),1)
-include cuda/cuda.mk
endif

deps:
	@missing=$$(for p in $(DEPS_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# records the compiler and flags; rewritten (so everything rebuilds) only when they change
$(BUILD)/cflags: FORCE
	@mkdir -p $(BUILD); echo '$(CC) $(CFLAGS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS)' >$@

ifneq ($(BIN),)
.PHONY: lcgbench lcgbench-mpi
lcgbench: $(BIN)lcgbench
lcgbench-mpi: $(BIN)lcgbench-mpi
endif

# the commands are linked into lcgbench only; tests drive them through the binary
$(BIN)lcgbench: $(LIB_OBJS) $(CLI_OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# the MPI cli files again with -DLCG_MPI, and mpi.c, through mpicc (objects apart in build/mpi)
$(BIN)lcgbench-mpi: $(LIB_OBJS) $(MPI_OBJS)
	$(MPICC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/mpi/%.o: %.c $(BUILD)/cflags
	@mkdir -p $(dir $@)
	$(MPICC) $(CFLAGS) $(DEPFLAGS) -DLCG_MPI -c -o $@ $<

$(BUILD)/%_f64.o: %.c $(BUILD)/cflags
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -DLCG_F64 -c -o $@ $<

$(BUILD)/%.o: %.c $(BUILD)/cflags
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/%.c $(LIB_OBJS) $(BIN)lcgbench
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS) $(CHECK_LIBS)

run: deps
	@$(MAKE) --no-print-directory $(BIN)lcgbench
	./$(BIN)lcgbench run $(RUN_ARGS)

# CK_DEFAULT_TIMEOUT: the training smoke tests take seconds, not the default 4
test: deps
	@$(MAKE) --no-print-directory $(BIN)lcgbench $(TEST_BINS) $(MPI_BIN)
	@fail=0; for t in $(TESTS); do \
	  CK_DEFAULT_TIMEOUT=600 $(BUILD)/tests/$$t || fail=1; \
	done; bash tests/test_gpu_state.sh || fail=1; bash tests/test_torch_copy.sh || fail=1; bash tests/test_torch_train.sh || fail=1; exit $$fail

# the unit suites (no CLI runs, no training smoke tests) under AddressSanitizer and
# UndefinedBehaviorSanitizer; any report fails the run
ASAN_DIR := $(BUILD)/asan
SAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
ASAN_FLAGS := $(STD_FLAGS) $(SAN_FLAGS)
ASAN_TESTS := test_kernels test_entmax test_scaling test_model test_tasks test_mqmtar
ASAN_OBJS := $(call objs,$(ASAN_DIR),$(LIB_SRCS)) $(patsubst %.c,$(ASAN_DIR)/%_f64.o,$(REAL_SRCS))

$(ASAN_DIR)/%_f64.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_FLAGS) $(DEPFLAGS) -DLCG_F64 -c -o $@ $<

$(ASAN_DIR)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_FLAGS) $(DEPFLAGS) -c -o $@ $<

$(ASAN_DIR)/tests/%: tests/%.c $(ASAN_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_FLAGS) $(DEPFLAGS) -o $@ $< $(ASAN_OBJS) $(LDLIBS) $(CHECK_LIBS)

$(ASAN_DIR)/lcgbench: $(ASAN_OBJS) $(call objs,$(ASAN_DIR),$(CLI_SRCS))
	$(CC) $(ASAN_FLAGS) -o $@ $^ $(LDLIBS)

# plus tiny end-to-end runs of the sanitized binary: training, evaluation, gen, --data, load,
# a non-finite step and the resume from its checkpoint
ASAN_RUN := --layers 2 --dim 16 --heads 2 --head-dim 8 --ffn 32 --steps 20 --warmup 5 --batch 8 --eval-samples 8 --quiet
# (./lcgbench too: test_model's PyTorch cross-check reads the registries' names from it)
test-asan: deps
	@$(MAKE) --no-print-directory $(BIN)lcgbench $(addprefix $(ASAN_DIR)/tests/,$(ASAN_TESTS)) $(ASAN_DIR)/lcgbench
	@export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 CK_DEFAULT_TIMEOUT=600; \
	fail=0; for t in $(ASAN_TESTS); do $(ASAN_DIR)/tests/$$t || fail=1; done; \
	d=$$(mktemp -d); \
	for a in $$($(ASAN_DIR)/lcgbench help attn --names); do \
	  $(ASAN_DIR)/lcgbench run --task recall --attn $$a --pos nape $(ASAN_RUN) --out $$d/r.csv --save $$d/m.ckpt >/dev/null || fail=1; \
	done; \
	$(ASAN_DIR)/lcgbench run --load $$d/m.ckpt --eval-samples 8 --quiet --out $$d/r.csv >/dev/null || fail=1; \
	LCG_TEST_NAN=attn@7 $(ASAN_DIR)/lcgbench run --task copy $(ASAN_RUN) --out $$d/n.csv --save $$d/n.ckpt 2>/dev/null >/dev/null; \
	[ $$? = 1 ] || fail=1; \
	$(ASAN_DIR)/lcgbench run --resume $$d/n.ckpt --eval-samples 8 --quiet --out $$d/n.csv >/dev/null || fail=1; \
	for t in count mqmtar; do \
	  $(ASAN_DIR)/lcgbench gen --task $$t --out $$d/$$t --count 200 2>/dev/null || fail=1; \
	  $(ASAN_DIR)/lcgbench gen --task $$t --out $$d/$$t --split test --len 64 --count 8 2>/dev/null || fail=1; \
	  $(ASAN_DIR)/lcgbench run --task $$t --data $$d/$$t $(ASAN_RUN) --out $$d/d.csv >/dev/null || fail=1; \
	done; \
	for k in 1 2; do \
	  $(ASAN_DIR)/lcgbench sweep --attn softmax,ssmax --seed 1,2 $(ASAN_RUN) --shard $$k/2 --out $$d/s$$k.csv >/dev/null 2>&1 || fail=1; \
	done; \
	$(ASAN_DIR)/lcgbench merge --attn softmax,ssmax --seed 1,2 $(ASAN_RUN) --out $$d/m.csv $$d/s2.csv $$d/s1.csv 2>/dev/null || fail=1; \
	rm -rf $$d; \
	if [ $$fail = 0 ]; then echo "test-asan: sanitizer runs clean"; else echo "test-asan: FAILED"; fi; exit $$fail

# valgrind (memcheck) on a small run: training with --save, --load, --resume and gen, built
# without -march=native (valgrind does not decode AVX-512) at -O1 -g; any error or definite
# leak fails it
VG_DIR := $(BUILD)/vg
VG_FLAGS := $(STD_FLAGS) -O1 -g
VG_OBJS := $(call objs,$(VG_DIR),$(LIB_SRCS) $(CLI_SRCS)) $(patsubst %.c,$(VG_DIR)/%_f64.o,$(REAL_SRCS))
VALGRIND := valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite --show-possibly-lost=no

$(VG_DIR)/%_f64.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(VG_FLAGS) $(DEPFLAGS) -DLCG_F64 -c -o $@ $<

$(VG_DIR)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(VG_FLAGS) $(DEPFLAGS) -c -o $@ $<

$(VG_DIR)/lcgbench: $(VG_OBJS)
	$(CC) $(VG_FLAGS) -o $@ $^ $(LDLIBS)

valgrind: deps
	@dpkg -s valgrind >/dev/null 2>&1 || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends valgrind)
	@$(MAKE) --no-print-directory $(VG_DIR)/lcgbench
	@d=$$(mktemp -d); fail=0; export OMP_NUM_THREADS=2; \
	$(VALGRIND) $(VG_DIR)/lcgbench run --task recall --attn asentmax --pos nape $(ASAN_RUN) --out $$d/r.csv --save $$d/m.ckpt --checkpoint-every 7 >/dev/null || fail=1; \
	$(VALGRIND) $(VG_DIR)/lcgbench run --load $$d/m.ckpt --eval-samples 8 --quiet --out $$d/r.csv >/dev/null || fail=1; \
	$(VALGRIND) $(VG_DIR)/lcgbench run --resume $$d/m.ckpt --eval-samples 8 --quiet --out $$d/r.csv >/dev/null || fail=1; \
	$(VALGRIND) $(VG_DIR)/lcgbench gen --task mqmtar --out $$d/g --count 50 2>/dev/null || fail=1; \
	$(VALGRIND) $(VG_DIR)/lcgbench gen --task mqmtar --out $$d/g --split test --len 64 --count 8 2>/dev/null || fail=1; \
	$(VALGRIND) $(VG_DIR)/lcgbench run --task mqmtar --data $$d/g $(ASAN_RUN) --out $$d/d.csv >/dev/null || fail=1; \
	rm -rf $$d; \
	if [ $$fail = 0 ]; then echo "valgrind: clean"; else echo "valgrind: FAILED"; fi; exit $$fail

# performance (bench/report.sh): training throughput of every attention normalizer relative to
# softmax and to the same model in PyTorch (when python3-torch is installed), matmul GFLOP/s
# against the machine's measured FP32 peak, and one 65,536-token evaluation sample; one table
# of figures, targets and pass/miss at the end
$(BUILD)/bench/%: bench/%.c bench/peak.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -o $@ $< bench/peak.c $(LIB_OBJS) $(LDLIBS)

# and the x86-64-v3 (AVX2 + FMA) build beside the native one, in $(BUILD)/v3 (bench/peer.sh, gemm);
# the PyTorch peer wants python3-torch on an optimized BLAS (Debian's OpenBLAS makes libblas.so.3
# resolve to it): installed when missing, skipped with a message when not installable
BENCH_PKGS := python3-torch libopenblas0-pthread
bench: deps
	@missing=$$(for p in $(BENCH_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends $$missing) || \
	    echo "not installable: $$missing"; \
	fi
	@$(MAKE) --no-print-directory $(BIN)lcgbench $(BUILD)/bench/gemm $(BUILD)/bench/evalbench
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/v3 OPT="-O3 -march=x86-64-v3" $(BUILD)/v3/lcgbench $(BUILD)/v3/bench/gemm
	bench/report.sh

# ---- results: the mini grid, its table and figures, the CI regression guard --------------
# RESULTS: a directory holding result CSVs (*.csv) and any training curves (curves/*.csv);
# `make report` writes its table.{md,csv,tex} and `make plots` its figures/ (gnuplot, PNG and SVG) from them into REPORT: a scratch folder
# under $(BUILD) unless named, so nothing committed is rewritten by accident
# (`make report RESULTS=results/mini REPORT=results/mini` refreshes the committed one)
RESULTS ?= results/mini
REPORT ?= $(BUILD)/report/$(subst /,_,$(RESULTS))
RUNS = $(filter-out $(RESULTS)/table.csv $(RESULTS)/reference.csv,$(wildcard $(RESULTS)/*.csv))
# runs validated with --select best have rows for both checkpoints: the report then also draws
# the last checkpoint's (figures/<task>-last*, table-last.md; the best ones stand for the runs)
HAS_BEST = $(shell grep -l -m1 ',best,' $(RUNS) /dev/null 2>/dev/null)
# the mechanism (issue 20): figures/<task>-mechanism (plots/mechanism.gp) for the tasks whose rows
# have the relevant-key mass; and, for every checkpoint RESULTS/mechanism/*.ckpt, its attention
# maps at the lengths MAP_LENS (figures/map-<name>-<len>.png) and one panel of them all
# (figures/maps-panel.png, plots/attnpanel.gp). MAP_LENS: 1x and 64x of the mini recall runs.
MAPS = $(sort $(wildcard $(RESULTS)/mechanism/*.ckpt $(RESULTS)/*.ckpt))
MAP_LENS ?= 24 1536
# training curves (run --log-csv) kept in RESULTS/curves/: figures/curve-<name> (plots/curves.gp)
CURVES = $(wildcard $(RESULTS)/curves/*.csv)
plots: $(BIN)lcgbench
	@dpkg -s gnuplot-nox >/dev/null 2>&1 || dpkg -s gnuplot >/dev/null 2>&1 || \
	  ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends gnuplot-nox)
	@mkdir -p $(REPORT)/figures
	./$(BIN)lcgbench table --format dat --out $(REPORT)/plots $(RUNS)
	@if [ -n "$(HAS_BEST)" ]; then ./$(BIN)lcgbench table --format dat --checkpoint last --out $(REPORT)/plots-last $(RUNS); fi
	@for d in $(REPORT)/plots/*.dat $(if $(HAS_BEST),$(REPORT)/plots-last/*.dat); do t=$$(basename $$d .dat); \
	  case $$d in */plots-last/*) o=$$t-last; title="$$t (last checkpoint)";; *) o=$$t; title=$$t;; esac; \
	  gnuplot -e "data='$$d'; out='$(REPORT)/figures/$$o'; task='$$title'" plots/accuracy.gp || exit 1; \
	  [ "$$o" != "$$t" ] || gnuplot -e "data='$$d'; out='$(REPORT)/figures/$$t-attn'; task='$$t'" plots/diagnostics.gp || exit 1; \
	  if awk '!/^"/ && NF >= 14 && $$11 ~ /^[0-9.e+-]+$$/ {f = 1} END {exit !f}' $$d; then \
	    gnuplot -e "data='$$d'; out='$(REPORT)/figures/$$o-mechanism'; task='$$title'" plots/mechanism.gp || exit 1; fi; \
	done
	@if [ -n "$(MAPS)" ]; then mkdir -p $(REPORT)/maps; files=; labels=; for c in $(MAPS); do n=$$(basename $$c .ckpt); \
	  for L in $(MAP_LENS); do \
	    ./$(BIN)lcgbench attnmap --load $$c --len $$L --out $(REPORT)/figures/map-$$n-$$L.png \
	      --data-out $(REPORT)/maps/map-$$n-$$L.dat --threads 1 || exit 1; \
	    files="$$files $(REPORT)/maps/map-$$n-$$L.dat"; labels="$$labels|$${n#*-}, $$L"; done; done; \
	  gnuplot -e "files='$$files'; labels='$${labels#|}'; out='$(REPORT)/figures/maps-panel.png'; title='attention of the last layer, one test sample (answers: red circles)'" plots/attnpanel.gp || exit 1; fi
	@for c in $(CURVES); do t=$$(basename $$c .csv); \
	  gnuplot -e "data='$$c'; out='$(REPORT)/figures/curve-$$t'; title='$$t'; cols='$$(head -1 $$c | tr , ' ')'" plots/curves.gp || exit 1; \
	done; echo "figures in $(REPORT)/figures"

report: $(BIN)lcgbench plots
	./$(BIN)lcgbench table --format md --out $(REPORT)/table.md $(RUNS)
	./$(BIN)lcgbench table --format csv --out $(REPORT)/table.csv $(RUNS)
	./$(BIN)lcgbench table --format latex --out $(REPORT)/table.tex $(RUNS)
	@if [ -n "$(HAS_BEST)" ]; then ./$(BIN)lcgbench table --checkpoint last --out $(REPORT)/table-last.md $(RUNS); fi
	@if [ -f $(RESULTS)/reference.csv ]; then \
	  ./$(BIN)lcgbench table --against $(RESULTS)/reference.csv --out $(REPORT)/against.md $(RUNS) && \
	  if [ -n "$(HAS_BEST)" ]; then ./$(BIN)lcgbench table --checkpoint last --against $(RESULTS)/reference.csv \
	    --out $(REPORT)/against-last.md $(RUNS); fi; fi
	@echo "report in $(REPORT)"

# the committed mini grid (hours on a 2-core machine; resumable: rerun to continue)
mini: deps
	@$(MAKE) --no-print-directory $(BIN)lcgbench
	./$(BIN)lcgbench sweep --grid results/mini/grid.txt --out results/mini/mini.csv --quiet

# trains the ci preset for a few (task, attention) pairs and compares every row with the
# committed baseline; `make regress-update` is the only thing that rewrites the baseline
REGRESS_CSV := $(BUILD)/regress.csv
regress: deps
	@$(MAKE) --no-print-directory $(BIN)lcgbench
	@mkdir -p $(BUILD); rm -f $(REGRESS_CSV)
	./$(BIN)lcgbench sweep --grid results/baselines/ci.grid --out $(REGRESS_CSV) --quiet >/dev/null
	./$(BIN)lcgbench regress --baseline results/baselines/ci.csv $(REGRESS_CSV)

regress-update: deps
	@$(MAKE) --no-print-directory $(BIN)lcgbench
	@mkdir -p $(BUILD); rm -f $(REGRESS_CSV)
	./$(BIN)lcgbench sweep --grid results/baselines/ci.grid --out $(REGRESS_CSV) --quiet >/dev/null
	cp $(REGRESS_CSV) results/baselines/ci.csv
	@echo "rewrote results/baselines/ci.csv: review and commit it"

clean:
	rm -rf $(BUILD) $(if $(BIN),,lcgbench lcgbench-mpi)

# ---- fuzzing: libFuzzer (clang) harnesses in tests/fuzz/, each with ASan + UBSan ---------------
# `make fuzz FUZZ_SECONDS=N` runs every harness N seconds in turn (one at a time), starting
# from its committed seed corpus tests/fuzz/corpus/<name>/ (new inputs go to
# $(BUILD)/fuzz/corpus/<name>/, crashes to $(BUILD)/fuzz/crash-<name>-*); `make fuzz-build`
# only builds. FUZZ_TARGETS picks harnesses.
FUZZ_PKGS := clang libomp-dev
FUZZ_CC := clang
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= cli checkpoint data grid
FUZZ_FLAGS := $(STD_FLAGS) $(SAN_FLAGS) -DLCG_FUZZ
FUZZ_OBJS := $(call objs,$(FUZZ_DIR),$(LIB_SRCS)) $(patsubst %.c,$(FUZZ_DIR)/%_f64.o,$(REAL_SRCS))
FUZZ_CLI_OBJS := $(call objs,$(FUZZ_DIR),$(CLI_SRCS))

$(FUZZ_DIR)/%_f64.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(DEPFLAGS) -fsanitize=fuzzer-no-link -DLCG_F64 -c -o $@ $<

$(FUZZ_DIR)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(DEPFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

# fuzz_cli links the commands (built with -DLCG_FUZZ: no main, usage errors return); fuzz_grid
# includes cli/grid.c (for its static parser)
$(FUZZ_DIR)/fuzz_cli: tests/fuzz/fuzz_cli.c $(FUZZ_OBJS) $(FUZZ_CLI_OBJS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(DEPFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(FUZZ_CLI_OBJS) $(LDLIBS)

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(DEPFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(LDLIBS)

fuzz-deps:
	@missing=$$(for p in $(FUZZ_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

fuzz-build: deps fuzz-deps
	@$(MAKE) --no-print-directory $(addprefix $(FUZZ_DIR)/fuzz_,$(FUZZ_TARGETS))

# -close_fd_mask=3: the targets' own messages (every rejected input prints one) are muted;
# libFuzzer's report and any sanitizer report still reach the terminal
fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$t; \
	  echo "== fuzz_$$t: $(FUZZ_SECONDS) s"; \
	  ASAN_OPTIONS=detect_leaks=1 $(FUZZ_DIR)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -close_fd_mask=3 \
	    -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crash-$$t- \
	    $(FUZZ_DIR)/corpus/$$t tests/fuzz/corpus/$$t || exit 1; \
	done

# header dependencies (-MMD -MP) of the objects and binaries of this tree built so far (only
# those: another BUILD nested inside this one keeps its own)
DEP_SRCS := $(patsubst %.c,%.d,$(LIB_SRCS) $(CLI_SRCS) $(MPI_ONLY)) $(patsubst %.c,%_f64.d,$(REAL_SRCS))
-include $(wildcard $(foreach d,$(BUILD) $(BUILD)/mpi $(ASAN_DIR) $(VG_DIR) $(FUZZ_DIR),$(addprefix $(d)/,$(DEP_SRCS))) \
                    $(BUILD)/tests/*.d $(ASAN_DIR)/tests/*.d $(BUILD)/bench/*.d $(FUZZ_DIR)/*.d)
