// service_bench: the service benchmark of `make bench-service`, on the binaries users run.
//
// Starts the actserve binary as a process of its own with its default flags, except for a
// free loopback port for --address and one for --metrics_address (the default,
// 0.0.0.0:9464, may be taken on a shared machine), and without GLIBC_TUNABLES, as
// `make run`, deploy/Dockerfile and the Kubernetes manifests start it. Starts
// actserve_echo, the bare gRPC echo of the same bytes, as another process, with glibc's
// allocator at its best for it (--echo_glibc_tunables). Then drives both from this process
// with the same client code (client/actctl/bench/service_bench.h, what `actctl bench`
// runs against servers that are already up), and reports each server's minor page faults
// per call next to its throughput and latency.
//
// With --in_process it starts actserve (server::Server) and two echo servers (actserve's
// transport settings, gRPC's defaults) inside this process on loopback ports instead,
// sharing its allocator and flags: a profiling aid (one process to perf), not what users
// run.
//
//   service_bench --bench_csv=bench/results/service.csv
//   service_bench --bench_payloads=1048576 --bench_concurrency=1,4,16 --bench_activation=relu
//   service_bench --actserve_binary=/tmp/old/actserve    # another build, same harness
//   service_bench -- --threads=2                         # extra actserve flags after --
//   service_bench --in_process --bench_payloads=1048576  # servers in this process
//
// The --bench_* flags are those of `actctl bench` (client/actctl/bench/bench_command.h).
// Part of the benchmark harness: built with -DACTSERVE_BUILD_BENCH=ON only.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/actctl/bench/bench_command.h"
#include "bench/service/echo_server.h"
#include "bench/service/server_process.h"
#include "server/logging.h"
#include "server/server.h"

ABSL_FLAG(std::string, actserve_binary, "",
          "the actserve binary to measure; default: server/actserve of this build tree");
ABSL_FLAG(std::string, echo_binary, "",
          "the actserve_echo binary; default: the one next to this program");
ABSL_FLAG(std::string, actserve_glibc_tunables, "",
          "GLIBC_TUNABLES for actserve; default: unset, as users run it");
// glibc's malloc at its best for the protobuf echo: a fixed 32 MiB mmap threshold and a
// 1 GiB trim threshold keep freed message memory for the next call (no fresh pages to
// fault in), and transparent huge pages for the heap (hugetlb=1) make a first touch cost
// one fault per 2 MiB instead of one per 4 KiB.
ABSL_FLAG(std::string, echo_glibc_tunables,
          "glibc.malloc.hugetlb=1:glibc.malloc.trim_threshold=1073741824:"
          "glibc.malloc.mmap_threshold=33554432",
          "GLIBC_TUNABLES for actserve_echo (empty: unset)");
ABSL_FLAG(bool, in_process, false,
          "start actserve and both echo servers inside this process instead of the "
          "binaries (a profiling aid; --actserve_binary and --echo_binary are not used)");

namespace {

using actserve::bench::EchoServer;
using actserve::bench::EchoServerOptions;
using actserve::bench::ServerProcess;
using actserve::bench::ServerProcessOptions;
using actserve::bench::ServiceBenchOptions;

std::string ThisProgramsDirectory() {
  char path[4096];
  const ssize_t length = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (length <= 0) return ".";
  const std::string exe(path, static_cast<size_t>(length));
  const size_t slash = exe.find_last_of('/');
  return slash == std::string::npos ? "." : exe.substr(0, slash);
}

std::string LoadAverage() {
  std::ifstream file("/proc/loadavg");
  std::string one, five, fifteen;
  file >> one >> five >> fifteen;
  return absl::StrCat(one, " ", five, " ", fifteen);
}

// Starts a server on a free loopback port; `args_for(address)` gives its flags. A port
// taken between choosing it and binding it makes the server exit, so this tries three.
template <typename ArgsFor>
absl::StatusOr<std::unique_ptr<ServerProcess>> StartOnFreePort(ServerProcessOptions options,
                                                               ArgsFor args_for) {
  absl::Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    absl::StatusOr<int> port = actserve::bench::FreeLoopbackPort();
    if (!port.ok()) return port.status();
    options.address = absl::StrCat("127.0.0.1:", *port);
    absl::StatusOr<std::vector<std::string>> args = args_for(options.address);
    if (!args.ok()) return args.status();
    options.args = *std::move(args);
    absl::StatusOr<std::unique_ptr<ServerProcess>> process = ServerProcess::Start(options);
    if (process.ok()) return process;
    last = process.status();
  }
  return last;
}

// While it exists, the in-process server's log (server/logging.h) goes to `fd`, which it
// owns.
class ServerLogFile {
 public:
  explicit ServerLogFile(int fd) : fd_(fd) { actserve::server::SetLogFd(fd_); }
  ~ServerLogFile() {
    actserve::server::SetLogFd(STDERR_FILENO);
    ::close(fd_);
  }
  ServerLogFile(const ServerLogFile&) = delete;
  ServerLogFile& operator=(const ServerLogFile&) = delete;

 private:
  const int fd_;
};

std::string LocalTarget(int port) { return absl::StrCat("127.0.0.1:", port); }

// --in_process: actserve and both echo servers in this process, loaded by the same client
// code. actserve logs at its default level (info: one line per call, as in production)
// into options.server_log rather than among the benchmark's output.
int RunInProcess(ServiceBenchOptions options) {
  const int fd = ::open(options.server_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                        0644);
  if (fd < 0) {
    std::fprintf(stderr, "service_bench: cannot open the server log '%s'\n",
                 options.server_log.c_str());
    return 1;
  }
  // Declared first, so that the log goes back to stderr only once the server is gone.
  const ServerLogFile server_log(fd);
  actserve::server::ServerOptions server_options;
  server_options.address = "127.0.0.1:0";
  server_options.max_message_bytes = 0;  // unlimited: 64 MiB forward_backward is 128 MiB
  server_options.max_elements = 0;
  absl::StatusOr<std::unique_ptr<actserve::server::Server>> actserve =
      actserve::server::Server::Start(server_options);
  if (!actserve.ok()) {
    std::fprintf(stderr, "service_bench: actserve: %s\n", actserve.status().ToString().c_str());
    return 1;
  }
  EchoServerOptions echo_options;
  echo_options.transport = server_options;
  absl::StatusOr<std::unique_ptr<EchoServer>> echo = EchoServer::Start(echo_options);
  echo_options.actserve_settings = false;
  absl::StatusOr<std::unique_ptr<EchoServer>> echo_default = EchoServer::Start(echo_options);
  for (const absl::StatusOr<std::unique_ptr<EchoServer>>* started : {&echo, &echo_default}) {
    if (!started->ok()) {
      std::fprintf(stderr, "service_bench: echo: %s\n", started->status().ToString().c_str());
      return 1;
    }
  }
  options.targets = {LocalTarget((*actserve)->port())};
  options.echo_targets = {LocalTarget((*echo)->port())};
  options.echo_default_targets = {LocalTarget((*echo_default)->port())};
  options.servers_in_process = true;
  return actserve::bench::RunBenchAndWriteResults(options, "service_bench");
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "service_bench: the actserve binary against actserve_echo, each its own process "
      "(bench/README.md); flags after -- go to actserve");
  const std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  std::vector<std::string> extra_actserve_flags;
  for (size_t i = 1; i < rest.size(); ++i) extra_actserve_flags.push_back(rest[i]);

  absl::StatusOr<actserve::bench::ServiceBenchOptions> options =
      actserve::bench::BenchOptionsFromFlags(argc, argv);
  if (!options.ok()) {
    std::fprintf(stderr, "service_bench: %s\n", std::string(options.status().message()).c_str());
    return 2;
  }
  if (!options->targets.empty() || !options->echo_targets.empty()) {
    std::fprintf(stderr,
                 "service_bench: starts its own servers; to load running ones use "
                 "`actctl bench --target=... --echo_target=...`\n");
    return 2;
  }
  if (absl::GetFlag(FLAGS_in_process)) return RunInProcess(*std::move(options));
  const std::string here = ThisProgramsDirectory();
  std::string actserve_binary = absl::GetFlag(FLAGS_actserve_binary);
  if (actserve_binary.empty()) actserve_binary = here + "/../../server/actserve";
  std::string echo_binary = absl::GetFlag(FLAGS_echo_binary);
  if (echo_binary.empty()) echo_binary = here + "/actserve_echo";

  ServerProcessOptions actserve_options;
  actserve_options.binary = actserve_binary;
  actserve_options.glibc_tunables = absl::GetFlag(FLAGS_actserve_glibc_tunables);
  actserve_options.log_path = options->server_log;
  absl::StatusOr<std::unique_ptr<ServerProcess>> actserve = StartOnFreePort(
      actserve_options,
      [&](const std::string& address) -> absl::StatusOr<std::vector<std::string>> {
        absl::StatusOr<int> metrics_port = actserve::bench::FreeLoopbackPort();
        if (!metrics_port.ok()) return metrics_port.status();
        std::vector<std::string> args = {
            absl::StrCat("--address=", address),
            absl::StrCat("--metrics_address=127.0.0.1:", *metrics_port), "--http_address="};
        args.insert(args.end(), extra_actserve_flags.begin(), extra_actserve_flags.end());
        return args;
      });
  if (!actserve.ok()) {
    std::fprintf(stderr, "service_bench: actserve: %s\n", actserve.status().ToString().c_str());
    return 1;
  }
  ServerProcessOptions echo_options;
  echo_options.binary = echo_binary;
  echo_options.glibc_tunables = absl::GetFlag(FLAGS_echo_glibc_tunables);
  echo_options.log_path = options->server_log;
  absl::StatusOr<std::unique_ptr<ServerProcess>> echo = StartOnFreePort(
      echo_options, [](const std::string& address) -> absl::StatusOr<std::vector<std::string>> {
        return std::vector<std::string>{absl::StrCat("--address=", address)};
      });
  if (!echo.ok()) {
    std::fprintf(stderr, "service_bench: echo: %s\n", echo.status().ToString().c_str());
    return 1;
  }

  std::printf(
      "servers, each a process of its own; load from this process (gRPC generic stub, the "
      "same request bytes for both)\n"
      "  actserve (pid %d): %s\n"
      "    every other flag at its default; log (level info, a line per call) -> %s\n"
      "  echo (pid %d): %s\n"
      "load average at start: %s\n",
      static_cast<int>((*actserve)->pid()), (*actserve)->command_line().c_str(),
      options->server_log.c_str(), static_cast<int>((*echo)->pid()),
      (*echo)->command_line().c_str(), LoadAverage().c_str());
  options->targets = {(*actserve)->address()};
  options->echo_targets = {(*echo)->address()};
  options->actserve_pid = (*actserve)->pid();
  options->echo_pid = (*echo)->pid();
  const int exit_code = actserve::bench::RunBenchAndWriteResults(*options, "service_bench");
  std::printf("load average at end: %s\n", LoadAverage().c_str());
  return exit_code;
}
