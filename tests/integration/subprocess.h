// Helpers for tests that run the real binaries: start a process with its output captured
// in files, run one to completion, and start `actserve` on a free port and wait (with
// bounded polling, never a fixed sleep) until it reports SERVING.
#ifndef ACTSERVE_TESTS_INTEGRATION_SUBPROCESS_H_
#define ACTSERVE_TESTS_INTEGRATION_SUBPROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "actserve/client.h"

namespace actserve {
namespace integration {

// The whole contents of a file ("" when it cannot be read).
std::string ReadWholeFile(const std::string& path);

// A fresh directory under the test's temporary directory. Aborts when none can be made.
std::string MakeWorkDir();

// Starts `argv` (argv[0] an absolute path) with stdin from /dev/null and stdout and
// stderr written to the given files. Returns the pid, or -1.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& out_path,
            const std::string& err_path);

struct ProcessResult {
  int exit_code = -1;  // -1 when the process could not start or died of a signal
  std::string out;
  std::string err;
};

// Runs `argv` to completion; its output files go to `dir`. Not thread-safe (neither is
// ServerProcess::Start).
ProcessResult RunProcess(const std::vector<std::string>& argv, const std::string& dir);

// The actserve binary, started with --address=127.0.0.1:0 (the kernel picks a free port;
// the server logs "(port N" once it listens) and --threads=2.
class ServerProcess {
 public:
  // Starts `binary` with `extra_flags` after the default ones, writing its log into a new
  // file in `dir`, and waits until grpc.health.v1 says SERVING, asking through a client
  // with `probe_options` (TLS settings for a TLS server; its deadline and retries are
  // replaced). An error with the server's log when it exits, logs no port, or never
  // serves.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::string& binary, const std::string& dir,
      const std::vector<std::string>& extra_flags = {},
      const ClientOptions& probe_options = ClientOptions());
  // Kills the server if it still runs.
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // "127.0.0.1:<port>".
  std::string target() const;
  const std::string& log_path() const { return log_path_; }

  // Sends SIGTERM and waits (bounded polling) for the exit. The exit code, or -1 when the
  // server died of a signal or did not exit.
  int Stop();

 private:
  explicit ServerProcess(std::string log_path) : log_path_(std::move(log_path)) {}

  std::string log_path_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace integration
}  // namespace actserve

#endif  // ACTSERVE_TESTS_INTEGRATION_SUBPROCESS_H_
