# actserve: the two commands are `make run` and `make test` (see README.md).
#
#   make run     install what is missing, build Release, serve on localhost:50051
#   make test    install what is missing, build Release, run every test (ctest), then
#                the core and server suites under ASan + UBSan (make test-asan)
#   make build   configure and build only
#   make debug   the same with the debug preset (build/debug)
#   make clean   remove build/
PRESET ?= release
BUILD_DIR := build/$(PRESET)
JOBS ?= $(shell nproc)
ADDRESS ?= localhost:50051

.PHONY: all deps configure build run test debug clean

all: build

deps:
	@deploy/install-deps.sh

configure: deps
	@cmake --preset $(PRESET) >/dev/null

build: configure
	cmake --build --preset $(PRESET) -j $(JOBS)

run: build
	$(BUILD_DIR)/server/actserve --address=$(ADDRESS)

test: build
	ctest --preset $(PRESET) -j $(JOBS)
	$(if $(filter 1,$(SANITIZE)),$(MAKE) test-asan)

debug:
	$(MAKE) build PRESET=debug

clean:
	rm -rf build

# Hardening (see docs/errors.md):
#   make test-asan  build the core and server suites with AddressSanitizer +
#                   UndefinedBehaviorSanitizer (preset asan, build/asan) and run them
#   make fuzz       build the libFuzzer targets with clang (build/fuzz) and run each for
#                   FUZZ_SECONDS (default 60); new inputs go to build/fuzz/corpus, the
#                   seed corpus in tests/fuzz/corpus is only read
FUZZ_SECONDS ?= 60
FUZZ_DIR := build/fuzz
# The suites (tests/<dir>, ctest label <dir>) run under the sanitizers: the compute core
# (src, kernels), the server, and the fuzz seed replays: every unit that parses untrusted
# input or runs concurrently. The client, integration, deploy and Python suites run in
# the Release build only; building them a second time does not fit CI's budget.
ASAN_SUITES ?= src kernels server fuzz
# `make test SANITIZE=0` skips the sanitizer pass.
SANITIZE ?= 1
empty :=
space := $(empty) $(empty)

.PHONY: test-asan fuzz-build fuzz

test-asan: deps
	@cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS) --target $(foreach s,$(ASAN_SUITES),tests/$(s)/all)
	ctest --preset asan -j $(JOBS) -L '^($(subst $(space),|,$(strip $(ASAN_SUITES))))$$'

fuzz-build: deps
	@cmake --preset fuzz >/dev/null
	cmake --build --preset fuzz -j $(JOBS)

fuzz: fuzz-build
	@mkdir -p $(FUZZ_DIR)/corpus/request_path $(FUZZ_DIR)/corpus/activation_spec \
	  $(FUZZ_DIR)/corpus/wire_differential $(FUZZ_DIR)/corpus/model_infer
	$(FUZZ_DIR)/tests/fuzz/request_path_fuzzer -max_total_time=$(FUZZ_SECONDS) \
	  -print_final_stats=1 $(FUZZ_DIR)/corpus/request_path \
	  $(FUZZ_DIR)/tests/fuzz/seeds/wire $(FUZZ_DIR)/tests/fuzz/seeds/compute_request
	$(FUZZ_DIR)/tests/fuzz/activation_spec_fuzzer -max_total_time=$(FUZZ_SECONDS) \
	  -print_final_stats=1 $(FUZZ_DIR)/corpus/activation_spec tests/fuzz/corpus/activation_spec
	$(FUZZ_DIR)/tests/fuzz/wire_differential_fuzzer -max_total_time=$(FUZZ_SECONDS) \
	  -print_final_stats=1 $(FUZZ_DIR)/corpus/wire_differential \
	  $(FUZZ_DIR)/tests/fuzz/seeds/wire $(FUZZ_DIR)/tests/fuzz/seeds/compute_request
	$(FUZZ_DIR)/tests/fuzz/model_infer_fuzzer -max_total_time=$(FUZZ_SECONDS) \
	  -print_final_stats=1 $(FUZZ_DIR)/corpus/model_infer \
	  $(FUZZ_DIR)/tests/fuzz/seeds/model_infer_request

# Kernel measurements (Google Benchmark / 2^32-input sweep; not tests, not in CI):
#   make bench      actserve's kernels vs the memory limit and oneDNN -> bench/results/kernels.csv
#   make accuracy   every float32 input per activation -> bench/results/accuracy.md
#                   (1-7 minutes per activation on 2 cores; ACTIVATIONS=relu,gelu
#                   limits the sweep)
BENCH_BUILD_DIR := build/bench
ACTIVATIONS ?=

.PHONY: bench-configure bench-build bench accuracy

# The bench build (build/bench): Release with -DACTSERVE_BUILD_BENCH=ON, tests off.
bench-configure: deps
	cmake -S . -B $(BENCH_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release \
	  -DACTSERVE_BUILD_BENCH=ON -DACTSERVE_BUILD_TESTS=OFF >/dev/null

bench-build: bench-configure
	cmake --build $(BENCH_BUILD_DIR) -j $(JOBS) --target kernels_bench accuracy_sweep

bench: bench-build
	$(BENCH_BUILD_DIR)/bench/kernels_bench --csv=bench/results/kernels.csv \
	  --benchmark_min_time=0.05 --benchmark_repetitions=7 \
	  --benchmark_enable_random_interleaving=true

accuracy: bench-build
	$(BENCH_BUILD_DIR)/bench/accuracy_sweep --threads=2 --out=bench/results/accuracy.md \
	  $(if $(ACTIVATIONS),--activations=$(ACTIVATIONS))

# Deployment (see deploy/README.md):
#   make test-deploy  prove the Dockerfile's runtime stage without Docker: debootstrap a
#                     minimal bookworm root (cached in build/test-deploy), run the runtime
#                     stage's instructions in it (install-deps.sh --runtime, the binaries,
#                     the non-root user), serve from it with chroot as that user and check
#                     health, a Compute call and /metrics from outside. Needs root and
#                     Debian's mirror; not part of `make test`.
.PHONY: test-deploy

test-deploy: configure
	cmake --build --preset $(PRESET) -j $(JOBS) --target actserve actctl
	/usr/bin/python3 tests/deploy/chroot_runtime_test.py --build-dir=$(BUILD_DIR) \
	  --cache-dir=build/test-deploy

# Service measurement (bench/README.md; not a test, not in CI):
#   make bench-service   the actserve binary, started as its own process with its default
#                        flags (a free loopback port for --address and --metrics_address),
#                        against actserve_echo, a bare gRPC echo of the same bytes in
#                        another process (GLIBC_TUNABLES at their best for it), both driven
#                        by the same client code (actctl bench's, client/actctl/bench/) in
#                        bench/service's service_bench, interleaved; throughput, p50/p99
#                        and each server's page faults per call ->
#                        bench/results/service.csv; 15-25 minutes on 2 cores. Built in the
#                        bench build (build/bench, -DACTSERVE_BUILD_BENCH=ON).
#                        BENCH_SERVICE_FLAGS adds --bench_* flags (`service_bench --help`);
#                        --in_process runs the servers inside service_bench instead: a
#                        profiling aid, not what users run.
BENCH_SERVICE_FLAGS ?=

.PHONY: bench-service

bench-service: bench-configure
	cmake --build $(BENCH_BUILD_DIR) -j $(JOBS) --target actserve actserve_echo service_bench
	$(BENCH_BUILD_DIR)/bench/service/service_bench \
	  --actserve_binary=$(BENCH_BUILD_DIR)/server/actserve \
	  --echo_binary=$(BENCH_BUILD_DIR)/bench/service/actserve_echo \
	  --bench_csv=bench/results/service.csv $(BENCH_SERVICE_FLAGS)

# The Python SDK's speed (bench/README.md, "The Python SDK"; not a test, not in CI):
#   make bench-python   the actserve binary as its own process (default flags), driven in
#                       one run by the Python SDK (/usr/bin/python3) and by plain C++
#                       clients of the same bytes (compute_load: gRPC's generic stub;
#                       giant_tensor: the C++ SDK's ComputeChunkedInto): compute at 1 KiB,
#                       1, 16 and 64 MiB, compute_large of 1 GiB, RemoteActivation forward
#                       + backward -> bench/results/python.csv; about 5 minutes on 2 cores.
#                       BENCH_PYTHON_FLAGS adds flags (python_bench.py --help).
BENCH_PYTHON_FLAGS ?=

.PHONY: bench-python

bench-python: bench-configure
	cmake --build $(BENCH_BUILD_DIR) -j $(JOBS) --target actserve actserve_python_package \
	  compute_load giant_tensor
	PYTHONPATH=$(CURDIR)/client/python:$(CURDIR)/$(BENCH_BUILD_DIR)/python /usr/bin/python3 \
	  bench/python/python_bench.py --actserve_binary=$(BENCH_BUILD_DIR)/server/actserve \
	  --compute_load=$(BENCH_BUILD_DIR)/bench/service/compute_load \
	  --giant_tensor=$(BENCH_BUILD_DIR)/bench/service/giant_tensor \
	  --csv=bench/results/python.csv $(BENCH_PYTHON_FLAGS)
