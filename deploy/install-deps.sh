#!/usr/bin/env bash
# The one list of system packages that actserve needs on Debian 12 (bookworm): the build,
# the tests, the benchmarks and the Python SDK. Idempotent: installs only what is missing,
# so `make run` and `make test` can call it every time at almost no cost.
#
#   deploy/install-deps.sh            everything (build + tests + benchmarks + Python;
#                                     clang and its runtimes for `make fuzz`)
#   deploy/install-deps.sh --runtime  only the shared libraries the binaries need to run
set -euo pipefail

build_packages=(
  build-essential cmake ninja-build pkg-config git
  protobuf-compiler libprotobuf-dev libprotoc-dev
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc
  libabsl-dev libhwy-dev
  prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libdnnl-dev
  openssl ca-certificates
  clang libclang-rt-14-dev
)
python_packages=(
  python3 python3-grpcio python3-protobuf python3-numpy python3-torch
)
runtime_packages=(
  libgrpc++1.51 libgrpc29 libprotobuf32 libhwy1 libprometheus-cpp-core1.0
  libprometheus-cpp-pull1.0 ca-certificates
)

if [[ "${1:-}" == "--runtime" ]]; then
  wanted=("${runtime_packages[@]}")
else
  wanted=("${build_packages[@]}" "${python_packages[@]}")
fi

missing=()
for pkg in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
