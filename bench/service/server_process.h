// A server binary started as a process of its own for the service benchmark, the way users
// run it: its own allocator, its own environment, its own flags.
//
//   absl::StatusOr<int> port = FreeLoopbackPort();
//   ServerProcessOptions options;
//   options.binary = "build/release/server/actserve";
//   options.address = absl::StrCat("127.0.0.1:", *port);
//   options.args = {"--address=" + options.address};
//   absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::Start(options);
//   MinorPageFaults((*server)->pid());  // load.h
//
// Bench-only: linked into the `service_bench` driver, never into actctl or the SDK.
// Not thread-safe; destruction stops the process.
#ifndef ACTSERVE_BENCH_SERVICE_SERVER_PROCESS_H_
#define ACTSERVE_BENCH_SERVICE_SERVER_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace actserve {
namespace bench {

struct ServerProcessOptions {
  // The executable, and its arguments after argv[0].
  std::string binary;
  std::vector<std::string> args;
  // Where the server listens (host:port); Start returns once a gRPC connection to it is up.
  std::string address;
  // GLIBC_TUNABLES in the process's environment; empty: unset, whatever this process has
  // (the default users get). The rest of the environment is inherited.
  std::string glibc_tunables;
  // File that the process's stdout and stderr are appended to. Default "/dev/null".
  std::string log_path = "/dev/null";
  // How long the server may take to accept a connection. Default 30 s.
  absl::Duration startup_timeout = absl::Seconds(30);
};

class ServerProcess {
 public:
  // Starts the binary and waits until it accepts a gRPC connection on options.address.
  // Unavailable when it cannot be started, exits first (a busy port, a bad flag: its log
  // says why) or does not listen within the timeout; the process is then stopped.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(const ServerProcessOptions& options);

  // Stops the process: SIGTERM, and again after 200 ms (actserve serves new calls for its
  // drain delay after the first, a second ends that), SIGKILL if it is still running
  // 10 s later; then reaps it.
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& address() const { return address_; }
  // How the process was started, for the benchmark's output:
  // "GLIBC_TUNABLES=... binary --flag=value" (or "GLIBC_TUNABLES unset; binary ...").
  const std::string& command_line() const { return command_line_; }

 private:
  ServerProcess(pid_t pid, std::string address, std::string command_line)
      : pid_(pid), address_(std::move(address)), command_line_(std::move(command_line)) {}

  const pid_t pid_;
  const std::string address_;
  const std::string command_line_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0 and released).
// Another process may take it before the server binds it; actserve and actserve_echo then
// exit with "address in use" (they do not share ports), and ServerProcess::Start reports
// that. Unavailable when no socket can be bound.
absl::StatusOr<int> FreeLoopbackPort();

}  // namespace bench
}  // namespace actserve

#endif  // ACTSERVE_BENCH_SERVICE_SERVER_PROCESS_H_
