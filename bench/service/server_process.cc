// See server_process.h.
#include "bench/service/server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

extern char** environ;

namespace actserve {
namespace bench {
namespace {

constexpr char kTunables[] = "GLIBC_TUNABLES";

// This process's environment with GLIBC_TUNABLES replaced by `tunables` (removed when
// empty).
std::vector<std::string> ChildEnvironment(const std::string& tunables) {
  std::vector<std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (!absl::StartsWith(*entry, absl::StrCat(kTunables, "="))) environment.push_back(*entry);
  }
  if (!tunables.empty()) environment.push_back(absl::StrCat(kTunables, "=", tunables));
  return environment;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

// Waits up to `timeout` for `pid` to exit; true once it has been reaped.
bool Reaped(pid_t pid, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    const pid_t done = ::waitpid(pid, nullptr, WNOHANG);
    if (done == pid || (done < 0 && errno == ECHILD)) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

void Stop(pid_t pid) {
  ::kill(pid, SIGTERM);
  if (Reaped(pid, absl::Milliseconds(200))) return;
  ::kill(pid, SIGTERM);
  if (Reaped(pid, absl::Seconds(10))) return;
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const ServerProcessOptions& options) {
  std::vector<std::string> argv_strings = {options.binary};
  argv_strings.insert(argv_strings.end(), options.args.begin(), options.args.end());
  std::vector<std::string> env_strings = ChildEnvironment(options.glibc_tunables);
  const std::string command_line = absl::StrCat(
      options.glibc_tunables.empty() ? absl::StrCat(kTunables, " unset; ")
                                     : absl::StrCat(kTunables, "=", options.glibc_tunables, " "),
      absl::StrJoin(argv_strings, " "));
  // Everything the child needs is prepared before fork: after it, only async-signal-safe
  // calls.
  std::vector<char*> argv = Pointers(argv_strings);
  std::vector<char*> envp = Pointers(env_strings);
  const int log_fd =
      ::open(options.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot open the log '", options.log_path,
                                               "': ", std::strerror(errno)));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    return absl::UnavailableError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    // The server goes when the benchmark does, even if it is killed.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(126);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(log_fd);

  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel(options.address, grpc::InsecureChannelCredentials());
  const absl::Time deadline = absl::Now() + options.startup_timeout;
  while (!channel->WaitForConnected(std::chrono::system_clock::now() +
                                    std::chrono::milliseconds(100))) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      return absl::UnavailableError(absl::StrCat(
          command_line, ": exited (",
          WIFEXITED(status) ? absl::StrCat("status ", WEXITSTATUS(status))
                            : absl::StrCat("signal ", WTERMSIG(status)),
          ") before listening; its output is in ", options.log_path));
    }
    if (absl::Now() >= deadline) {
      Stop(pid);
      return absl::UnavailableError(absl::StrCat(command_line, ": not listening on ",
                                                 options.address, " after ",
                                                 absl::FormatDuration(options.startup_timeout)));
    }
  }
  return std::unique_ptr<ServerProcess>(new ServerProcess(pid, options.address, command_line));
}

ServerProcess::~ServerProcess() { Stop(pid_); }

absl::StatusOr<int> FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const int error = errno;
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("bind 127.0.0.1:0: ", std::strerror(error)));
  }
  ::close(fd);
  return static_cast<int>(ntohs(address.sin_port));
}

}  // namespace bench
}  // namespace actserve
