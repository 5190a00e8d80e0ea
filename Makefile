# Thin wrapper over CMake: `make demo`, `make test`, `make bench`, `make fuzz`. Each installs missing packages first.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
ifeq ($(SANITIZE),1)
  BUILD := build-sanitize
  CMAKE_FLAGS += -DPINAS_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
  export ASAN_OPTIONS ?= detect_leaks=1:alloc_dealloc_mismatch=0
  export LSAN_OPTIONS ?= suppressions=$(CURDIR)/scripts/lsan.supp:print_suppressions=0
  export UBSAN_OPTIONS ?= print_stacktrace=1
endif

FUZZ_SECONDS ?= 60

.PHONY: all deps build demo test bench fuzz clean

all: build

deps:
	@./scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	@./scripts/demo.sh $(BUILD)/pinas

test: build
	@cd $(BUILD) && ctest --output-on-failure -j 1 $(CTEST_FLAGS)

bench: build
	@./scripts/bench.sh $(BUILD)/pinas

# libFuzzer (clang, ASan + UBSan) on every parser for FUZZ_SECONDS each, in build-fuzz/ (tests/fuzz/run.sh).
fuzz: deps
	@JOBS=$(JOBS) ./tests/fuzz/run.sh all $(FUZZ_SECONDS) $(CURDIR)/build-fuzz

clean:
	rm -rf build build-sanitize build-fuzz
