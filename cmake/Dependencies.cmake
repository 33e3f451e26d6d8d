# Finds every third-party dependency once, for all targets.
#
# Debian 12 ships CMake package configs for Abseil, Highway and prometheus-cpp. For gRPC
# it ships one too, but other distributions do not, so gRPC is looked up with
# find_package(gRPC CONFIG) first and through pkg-config (grpc++, grpc++_reflection)
# otherwise. Either way the rest of the build sees the same imported targets.
find_package(Threads REQUIRED)
find_package(absl CONFIG REQUIRED)
find_package(Protobuf REQUIRED)

find_package(gRPC CONFIG QUIET)
if(gRPC_FOUND AND TARGET gRPC::grpc++)
  message(STATUS "actserve: gRPC ${gRPC_VERSION} from its CMake config")
  set(ACTSERVE_GRPCPP gRPC::grpc++)
  set(ACTSERVE_GRPCPP_REFLECTION gRPC::grpc++_reflection)
  if(TARGET gRPC::grpc_cpp_plugin)
    get_target_property(ACTSERVE_GRPC_CPP_PLUGIN gRPC::grpc_cpp_plugin LOCATION)
  endif()
else()
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(GRPCPP REQUIRED IMPORTED_TARGET grpc++)
  message(STATUS "actserve: gRPC ${GRPCPP_VERSION} from pkg-config")
  set(ACTSERVE_GRPCPP PkgConfig::GRPCPP)
  find_library(ACTSERVE_GRPCPP_REFLECTION_LIB NAMES grpc++_reflection REQUIRED)
  add_library(actserve_grpcpp_reflection INTERFACE)
  target_link_libraries(actserve_grpcpp_reflection INTERFACE
    "-Wl,--no-as-needed" ${ACTSERVE_GRPCPP_REFLECTION_LIB} "-Wl,--as-needed"
    PkgConfig::GRPCPP)
  set(ACTSERVE_GRPCPP_REFLECTION actserve_grpcpp_reflection)
endif()
if(NOT ACTSERVE_GRPC_CPP_PLUGIN OR NOT EXISTS "${ACTSERVE_GRPC_CPP_PLUGIN}")
  find_program(ACTSERVE_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)
endif()
find_program(ACTSERVE_GRPC_PYTHON_PLUGIN grpc_python_plugin)

find_package(hwy CONFIG REQUIRED)

# The server's Prometheus metrics: prometheus-cpp::core (registry, metric types) and
# prometheus-cpp::pull (the HTTP exposer).
find_package(prometheus-cpp CONFIG REQUIRED)

# The Open Inference Protocol's HTTP/REST door (server/inference/http_door.h): civetweb
# serves it (Debian's libcivetweb-dev), nlohmann-json reads and writes its JSON, and
# OpenSSL configures its TLS context (civetweb leaves that to a callback).
find_package(civetweb CONFIG REQUIRED)
find_package(nlohmann_json 3 CONFIG REQUIRED)
find_package(OpenSSL REQUIRED)

if(ACTSERVE_BUILD_TESTS)
  find_package(GTest CONFIG REQUIRED)
endif()
