# cuda/cuda.mk: the CUDA backend (issue 18): the GPU kernels and device model, their test
# against the CPU (test-gpu) and the training benchmark (bench-gpu). The Makefile includes this
# when CUDA=1; until then: `make -f Makefile -f cuda/cuda.mk test-gpu`. Needs nvcc; the CPU
# objects it links are the normal build's (kernels, model core; no libcsv, no libcheck).

NVCC      ?= nvcc
HAVE_NVCC := $(shell command -v $(NVCC) >/dev/null 2>&1 && echo 1)
ifneq ($(HAVE_NVCC),1)
$(error CUDA=1 needs nvcc (the CUDA toolkit), and '$(NVCC)' is not on the PATH)
endif
CUDA_HOME ?= $(patsubst %/bin/,%,$(dir $(shell command -v $(NVCC))))
# sm_90 machine code (H100/H200) plus PTX that newer GPUs compile at load
NVCC_ARCH ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
NVCCFLAGS := -O3 -std=c++17 $(NVCC_ARCH) -Xcompiler -Wall,-Wextra \
             $(if $(filter 1,$(WERROR)),-Werror all-warnings -Xcompiler -Werror) $(EXTRA_NVCCFLAGS)
CUDA_LIBS := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcublasLt -lcudart -lstdc++

GPU_OBJS := $(BUILD)/cuda/gpu_kernels.o $(BUILD)/cuda/gpu_model.o
# the CPU side the GPU code and its test link (float build only)
GPU_CPU_SRCS := kernels/matmul.c kernels/norms.c kernels/activations.c kernels/loss.c kernels/posenc.c \
                kernels/attention.c kernels/entmax.c kernels/lenscale.c model/model.c kernels/util.c \
                kernels/registry.c model/config.c model/optim.c
GPU_CPU_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(GPU_CPU_SRCS))

.PHONY: gpu test-gpu bench-gpu
gpu: $(GPU_OBJS)

$(BUILD)/cuda/%.o: cuda/%.cu $(wildcard cuda/*.h) $(wildcard kernels/*.h) $(wildcard model/*.h)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c -o $@ $<

$(BUILD)/cuda/%: cuda/%.c $(GPU_OBJS) $(GPU_CPU_OBJS) $(wildcard cuda/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(GPU_OBJS) $(GPU_CPU_OBJS) $(CUDA_LIBS) -lm

test-gpu: $(BUILD)/cuda/test_gpu
	$(BUILD)/cuda/test_gpu

bench-gpu: $(BUILD)/cuda/bench_gpu
	$(BUILD)/cuda/bench_gpu
