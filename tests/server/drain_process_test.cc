// The real `actserve` binary as a separate process: SIGTERM drains (health NOT_SERVING,
// new calls served during --drain_delay and refused after it, the call in flight
// completes OK; a second SIGTERM ends the delay) and the process exits 0; SIGHUP
// re-reads the token file; the log never shows a token. The binary's path comes from the
// build (ACTSERVE_BINARY); its port from its own "listening" log line.
#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "actserve/v1/activation.grpc.pb.h"
#include "tests/server/grpc_test_util.h"
#include "tests/server/test_server.h"

#ifndef ACTSERVE_BINARY
#error "ACTSERVE_BINARY must be the path of the actserve binary"
#endif

namespace actserve {
namespace server {
namespace {

using ::actserve::server::testing::AddBearer;
using ::actserve::server::testing::HealthStatus;
using ::actserve::server::testing::kNotServing;
using ::actserve::server::testing::kServing;
using ::actserve::server::testing::ReadFile;
using ::actserve::server::testing::SafetyDeadline;
using ::actserve::server::testing::TempDir;
using ::actserve::server::testing::ValidRequest;
using ::actserve::server::testing::WriteFile;
using ::testing::HasSubstr;
using ::testing::Not;

// Polls `condition` for at most a minute.
template <typename Condition>
bool Eventually(Condition condition) {
  const absl::Time give_up = absl::Now() + absl::Minutes(1);
  while (!condition()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

// An actserve process with its stderr in a file. Killed (SIGKILL) if still running at
// destruction, so a failing test leaves nothing behind.
class ActserveProcess {
 public:
  ActserveProcess(const TempDir& dir, std::vector<std::string> flags)
      : log_path_(dir.File("actserve.log")) {
    std::vector<std::string> argv = {ACTSERVE_BINARY, "--address=127.0.0.1:0",
                                     "--metrics_address=", "--http_address=",
                                     "--threads=2"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      const int log = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(log, STDERR_FILENO);
      std::vector<char*> args;
      for (std::string& arg : argv) args.push_back(arg.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~ActserveProcess() {
    if (pid_ > 0 && !exit_status_.has_value()) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  // The port from "listening on 127.0.0.1:0 (port N, ...": 0 when it never appears.
  int WaitForPort() {
    int port = 0;
    Eventually([&] {
      const std::string log = Log();
      const size_t at = log.find("(port ");
      if (at == std::string::npos) return exit_status_.has_value() || Exited();
      const size_t end = log.find_first_of(",)", at);
      return absl::SimpleAtoi(log.substr(at + 6, end - at - 6), &port);
    });
    return port;
  }

  void Signal(int signal_number) { ::kill(pid_, signal_number); }

  // Waits (bounded) for the process to exit; its wait status, or nullopt.
  std::optional<int> WaitForExit() {
    Eventually([&] { return Exited(); });
    return exit_status_;
  }

  std::string Log() const { return ReadFile(log_path_); }

 private:
  bool Exited() {
    if (exit_status_.has_value()) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) exit_status_ = status;
    return exit_status_.has_value();
  }

  std::string log_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

std::shared_ptr<grpc::Channel> Connect(int port) {
  return grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                             grpc::InsecureChannelCredentials());
}

TEST(DrainProcessTest, SigtermDrainsTheCallInFlightAndExitsZero) {
  TempDir dir;
  // No drain delay: new calls are refused as soon as health says NOT_SERVING.
  ActserveProcess process(dir,
                          {"--shutdown_grace=60s", "--drain_delay=0", "--log_level=info"});
  const int port = process.WaitForPort();
  ASSERT_GT(port, 0) << process.Log();
  auto channel = Connect(port);
  auto stub = v1::ActivationService::NewStub(channel);
  ASSERT_EQ(HealthStatus(channel, ""), kServing);

  // A call in flight: a stream that has been admitted and served once.
  grpc::ClientContext context;
  context.set_deadline(SafetyDeadline());
  auto stream = stub->ComputeStream(&context);
  ASSERT_TRUE(stream->Write(ValidRequest()));
  v1::ComputeResponse response;
  ASSERT_TRUE(stream->Read(&response));

  process.Signal(SIGTERM);
  EXPECT_TRUE(Eventually([&] { return HealthStatus(channel, "") == kNotServing; }));
  {
    grpc::ClientContext refused_context;
    refused_context.set_deadline(SafetyDeadline());
    v1::ComputeResponse refused_response;
    EXPECT_EQ(stub->Compute(&refused_context, ValidRequest(), &refused_response)
                  .error_code(),
              grpc::StatusCode::UNAVAILABLE);
  }

  // The in-flight call goes on and completes OK; then the process exits 0.
  ASSERT_TRUE(stream->Write(ValidRequest()));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_EQ(response.results_size(), 1);
  ASSERT_TRUE(stream->WritesDone());
  EXPECT_TRUE(stream->Finish().ok());

  const std::optional<int> status = process.WaitForExit();
  ASSERT_TRUE(status.has_value()) << "still running after the drain";
  ASSERT_TRUE(WIFEXITED(*status)) << process.Log();
  EXPECT_EQ(WEXITSTATUS(*status), 0) << process.Log();
  const std::string log = process.Log();
  EXPECT_THAT(log, HasSubstr("received SIGTERM"));
  EXPECT_THAT(log, HasSubstr("ComputeStream OK batches=2"));
}

TEST(DrainProcessTest, NewCallsAreServedDuringTheDrainDelayUntilASecondSigterm) {
  TempDir dir;
  // Far longer than the test: only the second SIGTERM can end the delay.
  ActserveProcess process(dir,
                          {"--drain_delay=10m", "--shutdown_grace=60s", "--log_level=info"});
  const int port = process.WaitForPort();
  ASSERT_GT(port, 0) << process.Log();
  {
    auto channel = Connect(port);
    auto stub = v1::ActivationService::NewStub(channel);
    ASSERT_EQ(HealthStatus(channel, ""), kServing);

    process.Signal(SIGTERM);
    EXPECT_TRUE(Eventually([&] { return HealthStatus(channel, "") == kNotServing; }));
    // A call that was already on its way when health turned: served, not refused.
    grpc::ClientContext context;
    context.set_deadline(SafetyDeadline());
    v1::ComputeResponse response;
    const grpc::Status served = stub->Compute(&context, ValidRequest(), &response);
    EXPECT_TRUE(served.ok()) << served.error_message();
    EXPECT_EQ(response.results_size(), 1);
    EXPECT_EQ(HealthStatus(channel, ""), kNotServing);
  }  // closed before the process exits (see the SIGHUP test)

  process.Signal(SIGTERM);
  const std::optional<int> status = process.WaitForExit();
  ASSERT_TRUE(status.has_value()) << "still running after the second SIGTERM";
  ASSERT_TRUE(WIFEXITED(*status)) << process.Log();
  EXPECT_EQ(WEXITSTATUS(*status), 0) << process.Log();
  const std::string log = process.Log();
  EXPECT_THAT(log, HasSubstr("still serving new calls for 10m"));
  EXPECT_THAT(log, HasSubstr("Compute OK"));
  EXPECT_THAT(log, HasSubstr("received SIGTERM again: ending the drain delay"));
}

TEST(DrainProcessTest, SighupReloadsTokensAndTheLogNeverShowsThem) {
  TempDir dir;
  const std::string tokens = dir.File("tokens");
  WriteFile(tokens, "before-reload-token\n");
  ActserveProcess process(dir, {"--auth_token_file=" + tokens, "--log_level=debug"});
  const int port = process.WaitForPort();
  ASSERT_GT(port, 0) << process.Log();
  // Closed before the signal: an idle synchronous client reads its socket only every
  // few seconds (gRPC's backup poller), which would delay the server's GOAWAY handshake.
  auto stub = v1::ActivationService::NewStub(Connect(port));
  auto call = [&stub](const std::string& token) {
    grpc::ClientContext context;
    context.set_deadline(SafetyDeadline());
    AddBearer(&context, token);
    v1::ComputeResponse response;
    return stub->Compute(&context, ValidRequest(), &response).error_code();
  };
  EXPECT_EQ(call("before-reload-token"), grpc::StatusCode::OK);

  WriteFile(tokens, "after-reload-token\n");
  process.Signal(SIGHUP);
  EXPECT_TRUE(Eventually([&] { return call("after-reload-token") == grpc::StatusCode::OK; }));
  EXPECT_EQ(call("before-reload-token"), grpc::StatusCode::UNAUTHENTICATED);
  stub.reset();

  process.Signal(SIGINT);
  const std::optional<int> status = process.WaitForExit();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << process.Log();
  const std::string log = process.Log();
  EXPECT_THAT(log, HasSubstr("SIGHUP: reloaded 1 auth tokens"));
  EXPECT_THAT(log, HasSubstr("Compute UNAUTHENTICATED"));
  EXPECT_THAT(log, Not(HasSubstr("reload-token")));
}

TEST(DrainProcessTest, BadFlagValuesExitNonZeroWithAReason) {
  TempDir dir;
  ActserveProcess process(dir, {"--tls_cert=" + dir.File("absent.crt"),
                                "--tls_key=" + dir.File("absent.key")});
  const std::optional<int> status = process.WaitForExit();
  ASSERT_TRUE(status.has_value());
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 1);
  EXPECT_THAT(process.Log(), HasSubstr("absent.crt"));
}

}  // namespace
}  // namespace server
}  // namespace actserve
