# actserve: the two commands are `make run` and `make test` (see README.md).
#
#   make run     install what is missing, build Release, serve on localhost:50051
#   make test    install what is missing, build Release, run every test (ctest)
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

debug:
	$(MAKE) build PRESET=debug

clean:
	rm -rf build
