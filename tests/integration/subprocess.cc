#include "tests/integration/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "actserve/client.h"
#include "gtest/gtest.h"

extern char** environ;

namespace actserve {
namespace integration {
namespace {

// Readiness polling: a bounded number of short waits. Nothing asserts on time.
constexpr int kPollAttempts = 600;
constexpr absl::Duration kPollInterval = absl::Milliseconds(50);

}  // namespace

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

std::string MakeWorkDir() {
  std::string pattern = ::testing::TempDir() + "/actserve_client_XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) std::abort();
  return pattern;
}

pid_t Spawn(const std::vector<std::string>& argv, const std::string& out_path,
            const std::string& err_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int error = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return error == 0 ? pid : -1;
}

ProcessResult RunProcess(const std::vector<std::string>& argv, const std::string& dir) {
  static int counter = 0;
  const std::string out_path = absl::StrCat(dir, "/run", counter, ".out");
  const std::string err_path = absl::StrCat(dir, "/run", counter++, ".err");
  ProcessResult result;
  const pid_t pid = Spawn(argv, out_path, err_path);
  if (pid < 0) return result;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  result.out = ReadWholeFile(out_path);
  result.err = ReadWholeFile(err_path);
  return result;
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const std::string& binary, const std::string& dir, const std::vector<std::string>& extra_flags,
    const ClientOptions& probe_options) {
  std::vector<std::string> argv = {binary, "--address=127.0.0.1:0", "--threads=2"};
  // Where the server has a metrics endpoint, switch it off, so that several test servers
  // do not compete for its fixed port.
  const ProcessResult help = RunProcess({binary, "--helpfull"}, dir);
  if ((help.out + help.err).find("metrics_address") != std::string::npos) {
    argv.push_back("--metrics_address=");
  }
  if ((help.out + help.err).find("http_address") != std::string::npos) {
    argv.push_back("--http_address=");
  }
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  static int instance = 0;  // several servers may share `dir`
  const std::string name = absl::StrCat(dir, "/actserve", instance++);
  std::unique_ptr<ServerProcess> server(new ServerProcess(name + ".log"));
  server->pid_ = Spawn(argv, name + ".out", server->log_path_);
  if (server->pid_ < 0) return absl::InternalError(absl::StrCat("cannot start ", binary));

  for (int attempt = 0; attempt < kPollAttempts && server->port_ == 0; ++attempt) {
    const std::string log = ReadWholeFile(server->log_path_);
    const size_t at = log.find("(port ");
    if (at != std::string::npos) {
      // The digits right after "(port ": the line may go on, e.g. "(port 41693, plaintext)".
      absl::string_view rest = absl::string_view(log).substr(at + 6);
      const size_t digits = std::min(rest.find_first_not_of("0123456789"), rest.size());
      if (!absl::SimpleAtoi(rest.substr(0, digits), &server->port_)) server->port_ = 0;
    }
    if (server->port_ != 0) break;
    if (waitpid(server->pid_, nullptr, WNOHANG) == server->pid_) {
      server->pid_ = -1;
      return absl::InternalError(absl::StrCat("actserve exited at start:\n", log));
    }
    absl::SleepFor(kPollInterval);
  }
  if (server->port_ == 0) {
    return absl::DeadlineExceededError(
        absl::StrCat("actserve logged no port:\n", ReadWholeFile(server->log_path_)));
  }

  ClientOptions options = probe_options;
  options.deadline = absl::Seconds(5);
  options.max_attempts = 1;
  const Client client(server->target(), options);
  absl::StatusOr<HealthStatus> health;
  for (int attempt = 0; attempt < kPollAttempts; ++attempt) {
    health = client.Health();
    if (health.ok() && *health == HealthStatus::kServing) return server;
    absl::SleepFor(kPollInterval);
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "actserve never became SERVING: ",
      health.ok() ? std::string(HealthStatusName(*health)) : health.status().ToString()));
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::string ServerProcess::target() const { return absl::StrCat("127.0.0.1:", port_); }

int ServerProcess::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  for (int attempt = 0; attempt < kPollAttempts; ++attempt) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    absl::SleepFor(kPollInterval);
  }
  return -1;
}

}  // namespace integration
}  // namespace actserve
