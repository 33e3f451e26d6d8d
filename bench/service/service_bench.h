// The service benchmark behind `actctl bench` and `make bench-service`: actserve against a
// bare gRPC echo of the same bytes, measured in one run, interleaved.
//
// For every configuration (unary at each payload size, streaming at the chunk size; each
// mode; each concurrency) it sends the same pre-serialized request bytes to actserve's
// Compute / ComputeStream and, sized to match byte for byte (request in, response out),
// to the echo server's Echo / EchoStream, with the same client code (bench/service/load.h).
// Each configuration runs `rounds` times, alternating servers within each round, and the
// medians over rounds are reported. Besides the echo with actserve's transport settings it
// measures an echo with gRPC's defaults, so a reader sees what the settings gained.
//
// Servers: `targets` drives running actserve servers (a whole fleet: workers are spread
// over them), with `echo_targets` (actserve_echo binaries) as the reference. This is how
// `make bench-service` measures (bench/service/service_bench_main.cc starts the actserve
// binary and actserve_echo as processes of their own, then calls RunServiceBench with
// their addresses and process ids, so that each server's page faults are counted too).
// Without targets, actserve (server::Server) and both echo servers start inside this
// process on loopback ports, sharing its allocator and flags: a profiling aid (one
// process to perf), not what users run.
#ifndef ACTSERVE_BENCH_SERVICE_SERVICE_BENCH_H_
#define ACTSERVE_BENCH_SERVICE_SERVICE_BENCH_H_

#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/service/results_csv.h"

namespace actserve {
namespace bench {

struct ServiceBenchOptions {
  // Running actserve servers to load; empty: start one in this process.
  std::vector<std::string> targets;
  // Running echo servers (actserve_echo) to compare with; empty: start both echo servers
  // (actserve settings, default settings) in this process. With echo_targets the
  // default-settings echo is not measured.
  std::vector<std::string> echo_targets;
  // Unary payloads: bytes of float32 input tensor. Default 1 KiB, 64 KiB, 1 MiB, 16 MiB,
  // 64 MiB.
  std::vector<size_t> payload_bytes = {size_t{1} << 10, size_t{64} << 10, size_t{1} << 20,
                                       size_t{16} << 20, size_t{64} << 20};
  // Streaming: bytes of input per message (0: no streaming rows). Default 16 MiB.
  size_t stream_chunk_bytes = size_t{16} << 20;
  int stream_messages = 6;
  std::vector<int> concurrency = {1, 4};
  // "forward" and/or "forward_backward" (which sends grad_output as well).
  std::vector<std::string> modes = {"forward", "forward_backward"};
  // Activations computed, each a set of rows. Default gelu.
  std::vector<std::string> activations = {"gelu"};
  // Process ids of the actserve and echo servers when each runs as a process of its own on
  // this machine: their minor page faults (/proc/<pid>/stat) are read before and after
  // each of their runs and reported per call. 0: not measured (in-process servers, or
  // servers elsewhere).
  int actserve_pid = 0;
  int echo_pid = 0;
  // Where the in-process actserve writes its log (appended to); it logs at its default
  // level, info, which is a line per call. Default "/dev/null": the lines are still
  // formatted and written, in batches (server/logging.h), so a file costs about the same.
  std::string server_log = "/dev/null";
  // Rounds per configuration, and the least time and calls per server in a round.
  int rounds = 3;
  absl::Duration min_time = absl::Milliseconds(300);
  int min_calls = 2;
};

// Runs the benchmark, printing a progress line per configuration and the final table to
// `out`. Errors: a server that cannot be started or reached, a failed call, a response
// of an unexpected size.
absl::StatusOr<std::vector<ServiceBenchRow>> RunServiceBench(const ServiceBenchOptions& options,
                                                             std::FILE* out);

// The table printed at the end: one line per row with both servers' MB/s, p50 and p99,
// the ratios actserve/echo (throughput) and actserve/echo (p50 latency), each server's
// page faults per call (when measured) and the default-settings echo (when measured).
std::string FormatServiceTable(const std::vector<ServiceBenchRow>& rows);

// Every value of the flag `--name=value` or `--name value` in argv, in order; absl flags
// keep only the last of a repeated flag, and `actctl bench --target=a --target=b` loads
// both.
std::vector<std::string> RepeatedFlagValues(int argc, char** argv, const std::string& name);

}  // namespace bench
}  // namespace actserve

#endif  // ACTSERVE_BENCH_SERVICE_SERVICE_BENCH_H_
