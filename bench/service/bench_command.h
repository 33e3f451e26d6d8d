// `actctl bench`: the service benchmark from the command line (service_bench.h).
//
//   actctl bench                                  # in-process actserve and echo servers
//   actctl bench --target=host1:50051 --target=host2:50051 --echo_target=host3:50052
//   actctl bench --bench_csv=bench/results/service.csv --bench_rounds=3
#ifndef ACTSERVE_BENCH_SERVICE_BENCH_COMMAND_H_
#define ACTSERVE_BENCH_SERVICE_BENCH_COMMAND_H_

namespace actserve {
namespace bench {

// Runs the benchmark with the bench flags (and every --target given) and returns the
// process exit code: 0 success, 1 the benchmark failed, 2 a bad flag value. `argv` is the
// original command line, read for repeated --target / --echo_target flags.
int RunBenchCommand(int argc, char** argv);

}  // namespace bench
}  // namespace actserve

#endif  // ACTSERVE_BENCH_SERVICE_BENCH_COMMAND_H_
