// The load generator of the service benchmark: drives any gRPC method with one
// pre-serialized request, through gRPC's generic (byte buffer) stub, so that the client
// does exactly the same work for actserve and for the echo server it is compared with.
//
//   LoadOptions options;
//   options.concurrency = 4;
//   absl::StatusOr<LoadResult> r = RunUnaryLoad(channels, "/actserve.v1.ActivationService/"
//                                               "Compute", request, expected_bytes, options);
//   r->p50_us;
//
// Every response's size is checked against `expected_response_bytes` (0: not checked);
// a mismatch or a failed call ends the run with that error.
#ifndef ACTSERVE_CLIENT_ACTCTL_BENCH_LOAD_H_
#define ACTSERVE_CLIENT_ACTCTL_BENCH_LOAD_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace actserve {
namespace bench {

struct LoadOptions {
  // Calls (unary) or streams (streaming) in progress at once, each on its own thread.
  // Worker i uses channels[i % channels.size()], so a fleet shares the load. Default 1.
  int concurrency = 1;
  // Each worker goes on calling until both hold: at least `min_calls` calls (streams:
  // messages) done, and `min_time` spent. Defaults 3 and 300 ms.
  int min_calls = 3;
  absl::Duration min_time = absl::Milliseconds(300);
  // Streaming: messages per stream, and how many a worker keeps sent but unanswered.
  // Defaults 8 and 3.
  int stream_messages = 8;
  int stream_window = 3;
  // Deadline of each call. Default 120 s.
  absl::Duration deadline = absl::Seconds(120);
};

struct LoadResult {
  int64_t calls = 0;          // unary calls, or stream messages, answered
  double seconds = 0;         // wall time of the run
  double calls_per_second = 0;
  // Latency of a call (streaming: from a message's write to its response), microseconds.
  double p50_us = 0;
  double p99_us = 0;
  // CPU time of the whole process (every thread: client and in-process servers) per
  // call, microseconds. The client's share is the same whichever server it drives, so
  // the difference between two servers measured alike is the difference in their
  // per-call work; it is far less disturbed by other load on the machine than latency.
  double cpu_us_per_call = 0;
};

// Unary calls of `method` ("/package.Service/Method") with `request`.
absl::StatusOr<LoadResult> RunUnaryLoad(
    const std::vector<std::shared_ptr<grpc::Channel>>& channels, const std::string& method,
    const grpc::ByteBuffer& request, size_t expected_response_bytes, const LoadOptions& options);

// Bidirectional streams of `method`, each sending `request` options.stream_messages
// times with at most options.stream_window unanswered.
absl::StatusOr<LoadResult> RunStreamLoad(
    const std::vector<std::shared_ptr<grpc::Channel>>& channels, const std::string& method,
    const grpc::ByteBuffer& request, size_t expected_response_bytes, const LoadOptions& options);

// The minor page faults of process `pid` so far, every thread's (field 10, minflt, of
// /proc/<pid>/stat): a first touch of a fresh page, which a server pays when it maps new
// memory for a message instead of reusing freed memory. NotFound when the process does
// not exist (or has exited and been reaped), Internal when the file cannot be parsed.
absl::StatusOr<int64_t> MinorPageFaults(int pid);

// Channel arguments for the benchmark's client: messages of any size.
grpc::ChannelArguments BenchChannelArguments();

// The `q` quantile (0..1) of `values` (sorted in place), nearest rank; 0 when empty.
double Quantile(std::vector<double>& values, double q);

}  // namespace bench
}  // namespace actserve

#endif  // ACTSERVE_CLIENT_ACTCTL_BENCH_LOAD_H_
