// actserve: the activation-function gRPC server.
//
//   actserve --address=0.0.0.0:50051 --threads=8 --log_level=info
//
// SIGINT or SIGTERM drains in-flight calls (up to --shutdown_grace) and exits 0.
#include <pthread.h>
#include <signal.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/logging.h"
#include "server/server.h"
#include "server/server_options.h"

ABSL_FLAG(std::string, address, "localhost:50051",
          "host:port to listen on; port 0 picks a free port");
ABSL_FLAG(int, threads, 0, "compute worker threads; 0: one per core");
ABSL_FLAG(int64_t, max_message_bytes, int64_t{256} << 20 /* 256 MiB */,
          "largest message received or sent, in bytes; 0: unlimited");
ABSL_FLAG(int64_t, max_elements, int64_t{1} << 26 /* 64 Mi */,
          "most input elements per request, summed over its items; 0: unlimited");
ABSL_FLAG(int, max_inflight, 64,
          "most Compute/ComputeStream calls in progress; 0: unlimited");
ABSL_FLAG(
    absl::Duration, shutdown_grace, absl::Seconds(5),
    "on SIGINT/SIGTERM, how long in-flight calls may finish before being cancelled");
ABSL_FLAG(std::string, log_level, "info",
          "least severe level logged: debug, info, warning, error");

namespace {

using actserve::server::Log;
using actserve::server::LogLevel;

actserve::server::ServerOptions OptionsFromFlags() {
  actserve::server::ServerOptions options;
  options.address = absl::GetFlag(FLAGS_address);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.max_elements = absl::GetFlag(FLAGS_max_elements);
  options.max_inflight = absl::GetFlag(FLAGS_max_inflight);
  options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "actserve: computes activation functions and their gradients over gRPC");
  absl::ParseCommandLine(argc, argv);

  LogLevel level = LogLevel::kInfo;
  if (!actserve::server::ParseLogLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    std::fprintf(stderr, "actserve: --log_level must be debug, info, warning or error\n");
    return 2;
  }
  actserve::server::SetLogLevel(level);

  // Block the shutdown signals before any thread exists, so every thread inherits the
  // mask and they are delivered only to the waiter below, through sigwait: no code runs
  // in a signal handler, so nothing has to be async-signal-safe.
  sigset_t shutdown_signals;
  sigemptyset(&shutdown_signals);
  sigaddset(&shutdown_signals, SIGINT);
  sigaddset(&shutdown_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &shutdown_signals, nullptr);

  absl::StatusOr<std::unique_ptr<actserve::server::Server>> server =
      actserve::server::Server::Start(OptionsFromFlags());
  if (!server.ok()) {
    Log(LogLevel::kError, absl::StrCat("cannot start: ", server.status().ToString()));
    return 1;
  }

  std::thread signal_waiter([&shutdown_signals, &server] {
    int signal_number = 0;
    sigwait(&shutdown_signals, &signal_number);
    Log(LogLevel::kInfo,
        signal_number == SIGTERM ? "received SIGTERM" : "received SIGINT");
    (*server)->Shutdown();
  });
  (*server)->Wait();  // returns once the waiter's Shutdown has drained every call
  signal_waiter.join();
  server->reset();
  return 0;
}
