#!/usr/bin/env bash
# The one list of system packages that actserve needs on Debian 12 (bookworm): the build,
# the tests, the benchmarks and the Python SDK. Idempotent: installs only what is missing,
# so `make run` and `make test` can call it every time at almost no cost.
#
#   deploy/install-deps.sh            everything (build + tests + benchmarks + Python;
#                                     clang and its runtimes for `make fuzz`; debootstrap
#                                     for `make test-deploy`; node and npm for the Node
#                                     tests)
#   deploy/install-deps.sh --build    only what compiles actserve and actctl with the
#                                     release preset (the Dockerfile's build stage)
#   deploy/install-deps.sh --runtime  only the shared libraries the binaries need to run
#                                     (the Dockerfile's runtime stage)
#   ... --list                        print that set, one package a line; install nothing
set -euo pipefail

build_packages=(
  build-essential cmake ninja-build pkg-config git
  protobuf-compiler libprotobuf-dev libprotoc-dev
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc
  libabsl-dev libhwy-dev
  prometheus-cpp-dev
  libcivetweb-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev
  libdnnl-dev
  openssl ca-certificates
  clang libclang-rt-14-dev
)
python_packages=(
  python3 python3-grpcio python3-protobuf python3-numpy python3-torch
  python3-yaml
  python3-setuptools python3-wheel python3-pip python3-venv
)
# The REST door's tests drive it with curl and with Node's built-in fetch (Node 18 or
# newer; tests/inference); Node itself comes with node_packages below.
rest_test_packages=(curl)
# tests/deploy's chroot test (make test-deploy) builds a bookworm root with it.
deploy_test_packages=(
  debootstrap
)
# The inference door's Node tests run `node` (the REST door's fetch, tests/inference) and
# `npm ci` (the gRPC door's, tests/inference/node). A machine may have both from one
# nodejs package with npm bundled (NodeSource's), which Debian's npm and nodejs packages
# conflict with: the commands are checked, not the packages, and Debian's two are
# installed only when a command is missing.
node_packages=(
  nodejs npm
)
# The package of every shared library that actserve and actctl link (ldd), and nothing
# else: tests/deploy/runtime_packages_test.py maps each library to its package with
# dpkg -S and fails when one is missing here. The C and C++ runtimes are in every Debian
# image already; they are listed anyway so that the list alone is the whole truth.
runtime_packages=(
  libc6 libgcc-s1 libstdc++6 zlib1g libssl3 libc-ares2 libre2-9
  libabsl20220623 libprotobuf32 libgrpc29 libgrpc++1.51 libhwy1
  libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libcivetweb1
  ca-certificates
  # Not linked, but opened by name at run time: Debian's civetweb dlopens
  # "libcrypto.so" (and "libssl.so", which the actserve executable answers itself:
  # server/inference/civetweb_openssl3.cc) for the REST port's TLS; only libssl-dev
  # provides those names.
  libssl-dev
)

mode="${1:-}"
case "$mode" in
  --runtime) wanted=("${runtime_packages[@]}") ;;
  --build) wanted=("${build_packages[@]}") ;;
  "" | --list)
    wanted=("${build_packages[@]}" "${python_packages[@]}" "${rest_test_packages[@]}"
            "${deploy_test_packages[@]}") ;;
  *) echo "usage: $0 [--build | --runtime] [--list]" >&2; exit 2 ;;
esac
if [[ "${1:-}" == "--list" || "${2:-}" == "--list" ]]; then
  printf '%s\n' "${wanted[@]}"
  if [[ -z "$mode" || "$mode" == --list ]]; then printf '%s\n' "${node_packages[@]}"; fi
  exit 0
fi

missing=()
for pkg in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
if [[ -z "$mode" ]] && ! { command -v node && command -v npm; } >/dev/null; then
  missing+=("${node_packages[@]}")
fi

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
