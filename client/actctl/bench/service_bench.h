// The service benchmark's client side, behind `actctl bench` and `make bench-service`:
// running actserve servers against a bare gRPC echo of the same bytes, measured in one
// run, interleaved. It loads servers; it never starts one.
//
// For every configuration (unary at each payload size, streaming at the chunk size; each
// mode; each concurrency) it sends the same pre-serialized request bytes to actserve's
// Compute / ComputeStream and, sized to match byte for byte (request in, response out,
// echo_request.h), to the echo server's Echo / EchoStream, with the same client code
// (load.h). Each configuration runs `rounds` times, alternating servers within each
// round, and the medians over rounds are reported. Besides the echo with actserve's
// transport settings it can measure an echo with gRPC's defaults, so a reader sees what
// the settings gained.
//
// Servers: `targets` are running actserve servers (a whole fleet: workers are spread over
// them), `echo_targets` running actserve_echo servers as the reference (none: actserve's
// figures alone). `make bench-service` runs the harness in bench/service/, which starts
// the actserve binary and actserve_echo as processes of their own (or, with
// --in_process, inside its own process, as a profiling aid) and then calls
// RunServiceBench with their addresses and process ids, so that each server's page
// faults are counted too.
#ifndef ACTSERVE_CLIENT_ACTCTL_BENCH_SERVICE_BENCH_H_
#define ACTSERVE_CLIENT_ACTCTL_BENCH_SERVICE_BENCH_H_

#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/actctl/bench/results_csv.h"

namespace actserve {
namespace bench {

struct ServiceBenchOptions {
  // Running actserve servers to load; at least one. Default: none.
  std::vector<std::string> targets;
  // Running echo servers (actserve_echo, actserve's transport settings) to compare with;
  // empty: no comparison, the echo columns stay empty. Default: none.
  std::vector<std::string> echo_targets;
  // Running echo servers with gRPC's default settings; measured only with
  // `echo_targets`. Default: none.
  std::vector<std::string> echo_default_targets;
  // True when the servers run inside the calling process (the harness's --in_process):
  // then the process's CPU time per call covers the servers' work too, and the progress
  // lines say so. Default: false.
  bool servers_in_process = false;
  // Unary payloads: bytes of float32 input tensor. Default 1 KiB, 64 KiB, 1 MiB, 16 MiB,
  // 64 MiB.
  std::vector<size_t> payload_bytes = {size_t{1} << 10, size_t{64} << 10, size_t{1} << 20,
                                       size_t{16} << 20, size_t{64} << 20};
  // Items per unary request: each payload is also sent split into this many items of
  // equal size (a row per count), to show what a request's item count costs. Default 1.
  std::vector<int> items_per_request = {1};
  // Also send each unary payload (one item) through the Open Inference Protocol's
  // ModelInfer (rows "oip"): the same tensors as raw_input_contents, the same outputs
  // requested (y; y and dx with dy in forward_backward). Activations without parameters
  // only. Default false.
  bool oip = false;
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
  // Where a server started for the benchmark writes its log (appended to); actserve logs
  // at its default level, info, which is a line per call. Default "/dev/null": the lines
  // are still formatted and written, in batches (server/logging.h), so a file costs about
  // the same. Read by the harness that starts servers; RunServiceBench starts none.
  std::string server_log = "/dev/null";
  // Rounds per configuration, and the least time and calls per server in a round.
  int rounds = 3;
  absl::Duration min_time = absl::Milliseconds(300);
  int min_calls = 2;
};

// Runs the benchmark, printing a progress line per configuration and the final table to
// `out`. Errors: InvalidArgument without targets; a server that cannot be reached, a
// failed call, a response of an unexpected size.
absl::StatusOr<std::vector<ServiceBenchRow>> RunServiceBench(const ServiceBenchOptions& options,
                                                             std::FILE* out);

// The table printed at the end: one line per row with both servers' MB/s, p50 and p99,
// the ratios actserve/echo (throughput) and actserve/echo (p50 latency), each server's
// page faults per call (when measured) and the default-settings echo (when measured).
std::string FormatServiceTable(const std::vector<ServiceBenchRow>& rows);

}  // namespace bench
}  // namespace actserve

#endif  // ACTSERVE_CLIENT_ACTCTL_BENCH_SERVICE_BENCH_H_
