// The service benchmark's command-line flags (--bench_*), shared by `actctl bench` and by
// the harness that starts servers for it (bench/service/service_bench_main.cc, what
// `make bench-service` runs); and `actctl bench` itself.
//
//   actctl bench --target=host1:50051 --target=host2:50051 --echo_target=host3:50052
//   actctl bench --bench_payloads=1048576   # the server of --target (localhost:50051)
#ifndef ACTSERVE_CLIENT_ACTCTL_BENCH_BENCH_COMMAND_H_
#define ACTSERVE_CLIENT_ACTCTL_BENCH_BENCH_COMMAND_H_

#include <string>

#include "absl/status/statusor.h"
#include "client/actctl/bench/service_bench.h"

namespace actserve {
namespace bench {

// The benchmark's options from the bench flags and every --target / --echo_target in
// `argv` (absl flags keep only the last of a repeated flag; none given: none in the
// options). Called from `main` once the flags are parsed. InvalidArgument naming the flag
// when a value is bad.
absl::StatusOr<ServiceBenchOptions> BenchOptionsFromFlags(int argc, char** argv);

// Runs the benchmark with `options`, prints the table, writes --bench_csv when given, and
// returns the process exit code: 0 success, 1 the benchmark failed or the CSV could not
// be written. `program` prefixes error messages.
int RunBenchAndWriteResults(const ServiceBenchOptions& options, const char* program);

// `actctl bench`: the two above, loading `default_target` (actctl's --target) when no
// --target is on the command line; exit code 2 for a bad flag value.
int RunBenchCommand(int argc, char** argv, const std::string& default_target);

}  // namespace bench
}  // namespace actserve

#endif  // ACTSERVE_CLIENT_ACTCTL_BENCH_BENCH_COMMAND_H_
