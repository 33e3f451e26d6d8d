// The service benchmark's results table (bench/results/service.csv) and its companion for
// the default-settings echo (bench/results/service_echo_default.csv).
//
// Columns of service.csv, in order:
//   rpc,activation,payload_bytes,mode,concurrency,actserve_mb_s,echo_mb_s,actserve_p50_us,
//   echo_p50_us,actserve_p99_us,echo_p99_us,actserve_faults_per_call,echo_faults_per_call
// `rpc` is "unary" or "stream"; `mode` "forward" or "forward_backward"; MB/s are 10^6
// bytes of input tensor (payload_bytes) per second; latencies in microseconds; faults per
// call are the server process's minor page faults per call (streams: per message), empty
// when the server was not a process of its own on this machine. Numbers are written with
// at most 3 decimals (MB/s), 2 (faults) or as whole microseconds.
#ifndef ACTSERVE_CLIENT_ACTCTL_BENCH_RESULTS_CSV_H_
#define ACTSERVE_CLIENT_ACTCTL_BENCH_RESULTS_CSV_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace actserve {
namespace bench {

// One server's figures for one configuration: medians over the benchmark's interleaved
// rounds, and page faults over all of them.
struct ServerFigures {
  double mb_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  // Minor page faults of the server's process during its rounds, divided by the calls
  // (streams: messages) it answered in them; negative: not measured.
  double faults_per_call = -1;
};

struct ServiceBenchRow {
  std::string rpc;   // "unary" or "stream"
  std::string activation;
  size_t payload_bytes = 0;
  int items = 1;     // items the payload is split into, each its own tensor
  std::string mode;  // "forward" or "forward_backward"
  int concurrency = 1;
  ServerFigures actserve;
  ServerFigures echo;          // echo with actserve's settings
  ServerFigures echo_default;  // echo with gRPC's default settings
};

extern const char kServiceCsvHeader[];
extern const char kEchoDefaultCsvHeader[];

// The whole service.csv text: the header line, then one line per row.
std::string FormatServiceCsv(const std::vector<ServiceBenchRow>& rows);
// The whole service_echo_default.csv text: rpc,activation,payload_bytes,mode,concurrency,
// echo_default_mb_s,echo_default_p50_us,echo_default_p99_us,echo_mb_s.
std::string FormatEchoDefaultCsv(const std::vector<ServiceBenchRow>& rows);

// Writes `text` to `path`; Unavailable naming the path when it cannot be written.
absl::Status WriteTextFile(const std::string& path, const std::string& text);

}  // namespace bench
}  // namespace actserve

#endif  // ACTSERVE_CLIENT_ACTCTL_BENCH_RESULTS_CSV_H_
