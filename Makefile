# lcgbench — build, test, run. `make run` and `make test` install missing Debian packages
# first (apt-get; sudo when not root), then build. Plain `make` only builds.

CC      ?= gcc
OPT     ?= -O3 -march=native
CFLAGS  := -std=c11 -Wall -Wextra -Werror -fopenmp -ffp-contract=fast $(OPT) $(EXTRA_CFLAGS)
LDLIBS  := -lcsv -lm
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)
BUILD   := build

# Debian packages the build and tests need (OpenMP comes with gcc)
DEPS_PKGS := gcc make pkg-config libcsv-dev check
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# kernels and the model core are compiled twice: float (the tool) and double (`_f64`, the
# finite-difference gradient checks)
REAL_SRCS := kernels/matmul.c kernels/norms.c kernels/activations.c kernels/loss.c \
             kernels/posenc.c kernels/attention.c kernels/entmax.c kernels/lenscale.c model/model.c
PLAIN_SRCS := kernels/util.c kernels/registry.c model/config.c model/optim.c \
              model/checkpoint.c model/infer.c tasks/registry.c tasks/copy.c tasks/recall.c \
              tasks/flipflop.c tasks/count.c tasks/nback.c \
              harness/sequence.c harness/train.c harness/eval.c harness/csv_out.c harness/data.c
LIB_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(REAL_SRCS) $(PLAIN_SRCS)) \
            $(patsubst %.c,$(BUILD)/%_f64.o,$(REAL_SRCS))
TESTS := test_kernels test_entmax test_scaling test_model test_harness test_cli test_tasks test_mqmtar test_data
TEST_BINS := $(addprefix $(BUILD)/tests/,$(TESTS))

# the quick default job of `make run`
RUN_ARGS ?= --task copy --attn softmax --pos rope

.PHONY: all deps run test bench clean
all: lcgbench

deps:
	@missing=$$(for p in $(DEPS_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing; \
	fi

lcgbench: $(LIB_OBJS) $(BUILD)/harness/main.o
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/%_f64.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DLCG_F64 -c -o $@ $<

$(BUILD)/tests/%: tests/%.c tests/testutil.h $(LIB_OBJS) lcgbench
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS) $(CHECK_LIBS)

run: deps
	@$(MAKE) --no-print-directory lcgbench
	./lcgbench run $(RUN_ARGS)

# CK_DEFAULT_TIMEOUT: the training smoke tests take seconds, not the default 4
test: deps
	@$(MAKE) --no-print-directory lcgbench $(TEST_BINS)
	@fail=0; for t in $(TESTS); do \
	  CK_DEFAULT_TIMEOUT=600 $(BUILD)/tests/$$t || fail=1; \
	done; exit $$fail

# performance: training throughput of every attention normalizer relative to softmax
bench: deps
	@$(MAKE) --no-print-directory lcgbench
	bench/variants.sh

clean:
	rm -rf $(BUILD) lcgbench
