// The service benchmark's command-line flags (--bench_*), shared by `actctl bench` and
// `service_bench` (service_bench_main.cc, what `make bench-service` runs).
//
//   actctl bench --target=host1:50051 --target=host2:50051 --echo_target=host3:50052
//   actctl bench --bench_csv=/tmp/in_process.csv   # in-process servers: profiling only
#ifndef ACTSERVE_BENCH_SERVICE_BENCH_COMMAND_H_
#define ACTSERVE_BENCH_SERVICE_BENCH_COMMAND_H_

#include "absl/status/statusor.h"
#include "bench/service/service_bench.h"

namespace actserve {
namespace bench {

// The benchmark's options from the bench flags and every --target / --echo_target in
// `argv` (absl flags keep only the last of a repeated flag). InvalidArgument naming the
// flag when a value is bad.
absl::StatusOr<ServiceBenchOptions> BenchOptionsFromFlags(int argc, char** argv);

// Runs the benchmark with `options`, prints the table, writes --bench_csv when given, and
// returns the process exit code: 0 success, 1 the benchmark failed or the CSV could not
// be written. `program` prefixes error messages.
int RunBenchAndWriteResults(const ServiceBenchOptions& options, const char* program);

// `actctl bench`: the two above; exit code 2 for a bad flag value.
int RunBenchCommand(int argc, char** argv);

}  // namespace bench
}  // namespace actserve

#endif  // ACTSERVE_BENCH_SERVICE_BENCH_COMMAND_H_
