// See bench_command.h.
#include "client/actctl/bench/bench_command.h"

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "client/actctl/bench/results_csv.h"
#include "client/actctl/bench/service_bench.h"
#include "client/actctl/cli_format.h"

ABSL_FLAG(std::string, echo_target, "",
          "bench: a running actserve_echo to compare with (repeatable); default: none, "
          "actserve's figures alone");
ABSL_FLAG(std::string, bench_csv, "",
          "bench: write the results table here (e.g. bench/results/service.csv); the "
          "default-settings echo goes next to it as service_echo_default.csv");
ABSL_FLAG(int, bench_rounds, 3, "bench: interleaved rounds per configuration (medians)");
ABSL_FLAG(absl::Duration, bench_min_time, absl::Milliseconds(300),
          "bench: least time per server per round");
ABSL_FLAG(std::string, bench_payloads, "1024,65536,1048576,16777216,67108864",
          "bench: unary payloads, bytes of float32 input");
ABSL_FLAG(std::string, bench_items, "1",
          "bench: items per unary request, comma-separated; each payload is split into that "
          "many equal items (a row per count)");
ABSL_FLAG(std::string, bench_concurrency, "1,4", "bench: calls in flight, comma-separated");
ABSL_FLAG(int64_t, bench_stream_chunk, int64_t{16} << 20,
          "bench: bytes of input per stream message; 0: no streaming rows");
ABSL_FLAG(std::string, bench_activation, "gelu",
          "bench: the activations computed, comma-separated (a set of rows each)");
ABSL_FLAG(std::string, bench_server_log, "/dev/null",
          "bench: file a server started by service_bench appends its log to, in-process or "
          "as a process of its own (default level info: a line per call, as in production)");
ABSL_FLAG(std::string, bench_modes, "forward,forward_backward",
          "bench: forward and/or forward_backward (which sends grad_output too)");
ABSL_FLAG(bool, bench_oip, false,
          "bench: also send each unary payload through the Open Inference Protocol's "
          "ModelInfer (rows 'oip'; activations without parameters)");

namespace actserve {
namespace bench {

namespace {

template <typename T>
bool ParseList(const std::string& text, std::vector<T>* out) {
  out->clear();
  for (absl::string_view piece : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    T value{};
    if (!absl::SimpleAtoi(piece, &value) || value <= 0) return false;
    out->push_back(value);
  }
  return !out->empty();
}

}  // namespace

absl::StatusOr<ServiceBenchOptions> BenchOptionsFromFlags(int argc, char** argv) {
  ServiceBenchOptions options;
  options.targets = cli::RepeatedFlagValues(argc, argv, "target");
  options.echo_targets = cli::RepeatedFlagValues(argc, argv, "echo_target");
  options.rounds = absl::GetFlag(FLAGS_bench_rounds);
  options.min_time = absl::GetFlag(FLAGS_bench_min_time);
  options.activations =
      absl::StrSplit(absl::GetFlag(FLAGS_bench_activation), ',', absl::SkipEmpty());
  options.server_log = absl::GetFlag(FLAGS_bench_server_log);
  options.oip = absl::GetFlag(FLAGS_bench_oip);
  const int64_t chunk = absl::GetFlag(FLAGS_bench_stream_chunk);
  if (options.rounds < 1 || chunk < 0 ||
      !ParseList(absl::GetFlag(FLAGS_bench_payloads), &options.payload_bytes) ||
      !ParseList(absl::GetFlag(FLAGS_bench_concurrency), &options.concurrency) ||
      !ParseList(absl::GetFlag(FLAGS_bench_items), &options.items_per_request)) {
    return absl::InvalidArgumentError(
        "--bench_rounds must be >= 1, --bench_stream_chunk >= 0, --bench_payloads, "
        "--bench_concurrency and --bench_items lists of positive numbers");
  }
  if (options.activations.empty()) {
    return absl::InvalidArgumentError("--bench_activation: give at least one activation");
  }
  options.stream_chunk_bytes = static_cast<size_t>(chunk);
  options.modes = absl::StrSplit(absl::GetFlag(FLAGS_bench_modes), ',', absl::SkipEmpty());
  for (const std::string& mode : options.modes) {
    if (mode != "forward" && mode != "forward_backward") {
      return absl::InvalidArgumentError(
          absl::StrCat("--bench_modes: forward or forward_backward, got '", mode, "'"));
    }
  }
  return options;
}

int RunBenchAndWriteResults(const ServiceBenchOptions& options, const char* program) {
  absl::StatusOr<std::vector<ServiceBenchRow>> rows = RunServiceBench(options, stdout);
  if (!rows.ok()) {
    std::fprintf(stderr, "%s: %s\n", program, rows.status().ToString().c_str());
    return 1;
  }
  const std::string csv = absl::GetFlag(FLAGS_bench_csv);
  if (!csv.empty()) {
    absl::Status written = WriteTextFile(csv, FormatServiceCsv(*rows));
    if (written.ok() && options.echo_targets.empty()) {
      const size_t slash = csv.find_last_of('/');
      const std::string dir = slash == std::string::npos ? "" : csv.substr(0, slash + 1);
      written = WriteTextFile(dir + "service_echo_default.csv", FormatEchoDefaultCsv(*rows));
    }
    if (!written.ok()) {
      std::fprintf(stderr, "%s: %s\n", program, written.ToString().c_str());
      return 1;
    }
    std::printf("wrote %s\n", csv.c_str());
  }
  return 0;
}

int RunBenchCommand(int argc, char** argv, const std::string& default_target) {
  absl::StatusOr<ServiceBenchOptions> options = BenchOptionsFromFlags(argc, argv);
  if (!options.ok()) {
    std::fprintf(stderr, "actctl: bench: %s\n", std::string(options.status().message()).c_str());
    return 2;
  }
  if (options->targets.empty()) options->targets.push_back(default_target);
  return RunBenchAndWriteResults(*options, "actctl: bench");
}

}  // namespace bench
}  // namespace actserve
