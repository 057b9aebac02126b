# cuda/cuda.mk: the CUDA backend (issue 18): the GPU kernels and device model, their test
# against the CPU (test-gpu) and the training benchmark (bench-gpu). The Makefile includes this
# when CUDA=1 (`make CUDA=1`, `make CUDA=1 test-gpu`) and adds the "cuda" backend to lcgbench.
# Needs nvcc; test_gpu and bench_gpu link the normal build's kernels and model objects only
# (no libcsv, no libcheck).

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
# the "cuda" model-step backend joins the library (model/backend.c lists it under LCG_CUDA), so
# lcgbench and every test link it; switching CUDA on or off rebuilds the tree ($(BUILD)/cflags)
CFLAGS  += -DLCG_CUDA
LIB_OBJS += $(GPU_OBJS) $(BUILD)/cuda/backend_cuda.o
LDLIBS  += $(CUDA_LIBS)
# the CPU side the GPU test and benchmark link: the float and double objects of kernels/ and
# model/ (no harness: no libcsv, no libcheck, so they run where those are not installed)
GPU_CPU_OBJS := $(filter $(BUILD)/kernels/% $(BUILD)/model/%,$(LIB_OBJS)) $(BUILD)/cuda/backend_cuda.o

.PHONY: gpu test-gpu bench-gpu
gpu: $(GPU_OBJS)

$(BUILD)/cuda/%.o: cuda/%.cu $(wildcard cuda/*.h) $(wildcard kernels/*.h) $(wildcard model/*.h)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c -o $@ $<

$(BUILD)/cuda/%: cuda/%.c $(GPU_OBJS) $(GPU_CPU_OBJS) $(wildcard cuda/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(GPU_OBJS) $(GPU_CPU_OBJS) $(CUDA_LIBS) -lm

# the kernels and model against the CPU, then end-to-end runs of lcgbench --device cuda
# (cuda/test_gpu_e2e.sh); each prints one SKIP line and passes where no GPU can be used
test-gpu: $(BUILD)/cuda/test_gpu $(BIN)lcgbench
	$(BUILD)/cuda/test_gpu
	OMP_WAIT_POLICY=PASSIVE bash cuda/test_gpu_e2e.sh ./$(BIN)lcgbench

# lcgbench's training tokens/s (bench_gpu), then PyTorch's on the same GPU (eager and
# torch.compile; bench/torch_gpu_peer.py, skipped without torch)
BENCH_GPU_STEPS ?= 20
bench-gpu: $(BUILD)/cuda/bench_gpu
	$(BUILD)/cuda/bench_gpu $(BENCH_GPU_STEPS)
	python3 bench/torch_gpu_peer.py --steps $(BENCH_GPU_STEPS) || [ $$? = 77 ]

-include $(BUILD)/cuda/backend_cuda.d
