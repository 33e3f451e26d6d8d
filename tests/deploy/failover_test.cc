// Client-side balancing and failover over three real `actserve` processes, as over three
// pods behind a headless Service: one SDK Client with an "ipv4:a,b,c" target, round_robin
// over the replicas that report SERVING, wait_for_ready and retries, under a steady load
// from two threads. One replica is killed with SIGKILL mid-load (calls in flight on it die
// with the connection: UNAVAILABLE), another gets SIGTERM (it drains: NOT_SERVING, new
// calls are refused with UNAVAILABLE, calls in flight finish, then it closes its
// connections, so calls still on their way fail with UNAVAILABLE too; it exits 0). No
// call may fail, and each replica's own /metrics shows the load spread over the replicas
// that are alive.
//
// Deterministic: "mid-load" is a call number, not a time. The thread that draws call
// kKillAt kills replica A before making that call while the other thread goes on; the one
// that draws kTermAt sends SIGTERM to replica B and goes on too. Calls from kAfterBExits
// on wait until B has exited, so that they can only go to C.
// Each request is 400 KB, above gRPC's default retry buffer (256 KiB per call), so these
// calls are retryable only because ClientOptions::retry_buffer_bytes raises it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "actserve/client.h"
#include "client/sdk/channel.h"
#include "gtest/gtest.h"
#include "tests/integration/subprocess.h"

namespace actserve {
namespace {

using ::actserve::integration::MakeWorkDir;
using ::actserve::integration::ReadWholeFile;
using ::actserve::integration::Spawn;

// Readiness polling: bounded attempts of a short wait. Nothing asserts on time.
constexpr int kPollAttempts = 600;
constexpr absl::Duration kPollInterval = absl::Milliseconds(50);

constexpr int kCalls = 300;
constexpr int kKillAt = 100;       // SIGKILL replica A before call 100
constexpr int kTermAt = 150;       // SIGTERM replica B before call 150
constexpr int kAfterBExits = 250;  // calls from 250 on wait until B has exited
constexpr int kThreads = 2;
// 100,000 float32 = 400,000 bytes of tensor data per request: more than gRPC's default
// per-call retry buffer of 256 KiB.
constexpr int64_t kElements = 100000;

// The number after `key` in `text` (e.g. "(port " -> 41693), or 0.
int NumberAfter(absl::string_view text, absl::string_view key) {
  const size_t at = text.find(key);
  if (at == absl::string_view::npos) return 0;
  absl::string_view rest = text.substr(at + key.size());
  rest = rest.substr(0, std::min(rest.find_first_not_of("0123456789"), rest.size()));
  int number = 0;
  return absl::SimpleAtoi(rest, &number) ? number : 0;
}

// GET /metrics from 127.0.0.1:`port` over a plain socket (HTTP/1.0: the server closes
// the connection after the reply). The body, or nullopt when the server cannot be
// reached.
std::optional<std::string> HttpGetMetrics(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return std::nullopt;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return std::nullopt;
  }
  const std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      close(fd);
      return std::nullopt;
    }
    sent += static_cast<size_t>(n);
  }
  std::string reply;
  char buffer[4096];
  for (ssize_t n; (n = recv(fd, buffer, sizeof(buffer), 0)) > 0;) reply.append(buffer, n);
  close(fd);
  const size_t body = reply.find("\r\n\r\n");
  if (reply.rfind("HTTP/1.", 0) != 0 || body == std::string::npos) return std::nullopt;
  return reply.substr(body + 4);
}

// The value of the sample `series` (name and labels, as the server prints them) in a
// Prometheus text exposition; 0 when absent (a counter that never moved).
int64_t Sample(absl::string_view exposition, absl::string_view series) {
  const std::string key = absl::StrCat("\n", series, " ");
  const std::string text = absl::StrCat("\n", exposition);
  const size_t at = text.find(key);
  if (at == std::string::npos) return 0;
  absl::string_view rest = absl::string_view(text).substr(at + key.size());
  rest = rest.substr(0, rest.find('\n'));
  double value = 0;
  return absl::SimpleAtod(rest, &value) ? static_cast<int64_t>(value) : -1;
}

// The counter of Compute calls that a replica finished with OK (server/metrics.cc).
constexpr absl::string_view kComputeOk =
    R"(actserve_requests_total{code="OK",method="Compute"})";

// One `actserve` process on free loopback ports for gRPC and for /metrics.
class Replica {
 public:
  static absl::StatusOr<std::unique_ptr<Replica>> Start(const std::string& dir,
                                                        const std::string& name) {
    std::unique_ptr<Replica> replica(new Replica(absl::StrCat(dir, "/", name, ".log")));
    replica->pid_ = Spawn({ACTSERVE_BINARY, "--address=127.0.0.1:0",
                           "--metrics_address=127.0.0.1:0", "--http_address=",
                           "--threads=1",
                           "--shutdown_grace=30s", "--log_level=info"},
                          absl::StrCat(dir, "/", name, ".out"), replica->log_path_);
    if (replica->pid_ < 0) return absl::InternalError("cannot start actserve");
    for (int attempt = 0; attempt < kPollAttempts; ++attempt) {
      const std::string log = ReadWholeFile(replica->log_path_);
      replica->port_ = NumberAfter(log, "(port ");
      replica->metrics_port_ = NumberAfter(log, "metrics on port ");
      if (replica->port_ != 0 && replica->metrics_port_ != 0) break;
      if (waitpid(replica->pid_, nullptr, WNOHANG) == replica->pid_) {
        replica->pid_ = -1;
        return absl::InternalError(absl::StrCat(name, " exited at start:\n", log));
      }
      absl::SleepFor(kPollInterval);
    }
    if (replica->port_ == 0 || replica->metrics_port_ == 0) {
      return absl::DeadlineExceededError(absl::StrCat(
          name, " logged no gRPC or metrics port:\n", ReadWholeFile(replica->log_path_)));
    }
    ClientOptions probe;
    probe.max_attempts = 1;
    probe.deadline = absl::Seconds(5);
    const Client client(replica->address(), probe);
    for (int attempt = 0; attempt < kPollAttempts; ++attempt) {
      absl::StatusOr<HealthStatus> health = client.Health();
      if (health.ok() && *health == HealthStatus::kServing) return replica;
      absl::SleepFor(kPollInterval);
    }
    return absl::DeadlineExceededError(absl::StrCat(name, " never became SERVING"));
  }

  ~Replica() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  const std::string& log_path() const { return log_path_; }

  // Compute calls this replica finished with `series`' code so far; -1 when its metrics
  // cannot be read.
  int64_t Count(absl::string_view series) const {
    const std::optional<std::string> metrics = HttpGetMetrics(metrics_port_);
    return metrics.has_value() ? Sample(*metrics, series) : -1;
  }

  void Kill() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  void Terminate() { kill(pid_, SIGTERM); }

  // After Terminate: waits (bounded polling) for the exit. The exit code, or -1 when it
  // died of a signal or did not exit.
  int WaitForExit() {
    for (int attempt = 0; attempt < kPollAttempts && pid_ > 0; ++attempt) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      absl::SleepFor(kPollInterval);
    }
    return -1;
  }

 private:
  explicit Replica(std::string log_path) : log_path_(std::move(log_path)) {}

  std::string log_path_;
  pid_t pid_ = -1;
  int port_ = 0;
  int metrics_port_ = 0;
};

TEST(BalancingOptionsTest, ServiceConfigHasWaitForReadyAndTheBackoff) {
  ClientOptions options;
  options.wait_for_ready = true;
  options.max_attempts = 5;
  options.initial_backoff = absl::Milliseconds(50);
  options.max_backoff = absl::Milliseconds(1500);
  EXPECT_EQ(client_internal::ServiceConfigJson(options),
            R"({"loadBalancingConfig": [{"round_robin": {}}], "methodConfig": [{"name": )"
            R"([{"service": "actserve.v1.ActivationService"}, {"service": )"
            R"("grpc.health.v1.Health"}], "waitForReady": true, "retryPolicy": )"
            R"({"maxAttempts": 5, "initialBackoff": "0.05s", "maxBackoff": "1.5s", )"
            R"("backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE", )"
            R"("CANCELLED"]}}]})");
  options.max_attempts = 1;
  options.health_checked_balancing = true;
  EXPECT_EQ(client_internal::ServiceConfigJson(options),
            R"({"loadBalancingConfig": [{"round_robin": {}}], "healthCheckConfig": )"
            R"({"serviceName": ""}, "methodConfig": [{"name": )"
            R"([{"service": "actserve.v1.ActivationService"}, {"service": )"
            R"("grpc.health.v1.Health"}], "waitForReady": true}]})");
}

TEST(BalancingOptionsTest, JsonDurationIsDecimalSeconds) {
  EXPECT_EQ(client_internal::JsonDuration(absl::Milliseconds(100)), "0.1s");
  EXPECT_EQ(client_internal::JsonDuration(absl::Seconds(1)), "1s");
  EXPECT_EQ(client_internal::JsonDuration(absl::Seconds(90)), "90s");
  EXPECT_EQ(client_internal::JsonDuration(absl::Milliseconds(2500)), "2.5s");
  EXPECT_EQ(client_internal::JsonDuration(absl::Nanoseconds(1)), "0.000000001s");
  EXPECT_EQ(client_internal::JsonDuration(-absl::Seconds(1)), "0s");
}

TEST(FailoverTest, NoCallFailsWhenReplicasAreKilledAndDrainedMidLoad) {
  const std::string dir = MakeWorkDir();
  std::vector<std::unique_ptr<Replica>> replicas;
  for (const char* name : {"a", "b", "c"}) {
    absl::StatusOr<std::unique_ptr<Replica>> replica = Replica::Start(dir, name);
    ASSERT_TRUE(replica.ok()) << replica.status();
    replicas.push_back(*std::move(replica));
  }
  Replica& a = *replicas[0];
  Replica& b = *replicas[1];
  Replica& c = *replicas[2];

  ClientOptions options;
  options.load_balancing_policy = "round_robin";
  options.wait_for_ready = true;
  options.health_checked_balancing = true;
  options.max_attempts = 5;
  options.initial_backoff = absl::Milliseconds(50);
  options.max_backoff = absl::Milliseconds(500);
  options.retry_buffer_bytes = 1 << 20;  // 1 MiB: each 400 KB request stays retryable
  options.deadline = absl::Seconds(60);
  const Client client(absl::StrCat("ipv4:", a.address(), ",", b.address(), ",", c.address()),
                      options);

  // x = -50000 ... 49999 (exact in float32); relu(x) = max(x, 0).
  std::vector<float> x(kElements);
  for (int64_t i = 0; i < kElements; ++i) x[i] = static_cast<float>(i - kElements / 2);
  const std::vector<int64_t> shape = {kElements};

  std::atomic<int> next_call{0};
  absl::Notification b_gone;  // calls from kAfterBExits on wait for it
  absl::Mutex mu;
  std::vector<std::string> failures;  // guarded by mu
  // Each written by the one thread that draws the call number that triggers it, and read
  // after both threads are joined.
  int64_t a_before_kill = -1, b_before_kill = -1, c_before_kill = -1;
  int64_t b_before_term = -1, c_before_term = -1, c_after_b_exit = -1;
  int b_exit_code = -2;

  auto run = [&] {
    for (int call; (call = next_call.fetch_add(1)) < kCalls;) {
      if (call == kKillAt) {
        a_before_kill = a.Count(kComputeOk);
        b_before_kill = b.Count(kComputeOk);
        c_before_kill = c.Count(kComputeOk);
        a.Kill();  // the other thread goes on calling, A among the replicas it picks
      }
      if (call == kTermAt) {
        b_before_term = b.Count(kComputeOk);
        c_before_term = c.Count(kComputeOk);
        b.Terminate();  // B drains while both threads go on calling
      }
      if (call == kAfterBExits) {
        b_exit_code = b.WaitForExit();
        c_after_b_exit = c.Count(kComputeOk);
        b_gone.Notify();
      }
      if (call >= kAfterBExits) b_gone.WaitForNotification();
      absl::StatusOr<TypedResult<float>> result =
          client.Compute(absl::MakeConstSpan(x), shape, "relu", Mode::kForward);
      std::string problem;
      if (!result.ok()) {
        problem = result.status().ToString();
      } else if (result->output.size() != x.size()) {
        problem = absl::StrCat(result->output.size(), " outputs");
      } else {
        for (size_t i = 0; i < x.size() && problem.empty(); ++i) {
          if (result->output[i] != std::max(x[i], 0.0f)) {
            problem = absl::StrCat("output[", i, "] = ", result->output[i]);
          }
        }
      }
      if (!problem.empty()) {
        absl::MutexLock lock(&mu);
        failures.push_back(absl::StrCat("call ", call, ": ", problem));
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(run);
  for (std::thread& thread : threads) thread.join();

  {
    absl::MutexLock lock(&mu);
    EXPECT_TRUE(failures.empty()) << failures.size() << " failed calls:\n"
                                  << absl::StrJoin(failures, "\n") << "\nA's log:\n"
                                  << ReadWholeFile(a.log_path()) << "\nB's log:\n"
                                  << ReadWholeFile(b.log_path());
  }
  EXPECT_EQ(b_exit_code, 0) << "B did not drain and exit 0:\n" << ReadWholeFile(b.log_path());
  const int64_t c_final = c.Count(kComputeOk);

  // The first kKillAt calls went round-robin over all three (about a third each).
  EXPECT_GT(a_before_kill, kKillAt / 6);
  EXPECT_GT(b_before_kill, kKillAt / 6);
  EXPECT_GT(c_before_kill, kKillAt / 6);
  // Between the kill and the SIGTERM, B and C shared the calls (about half each).
  EXPECT_GT(b_before_term - b_before_kill, (kTermAt - kKillAt) / 4);
  EXPECT_GT(c_before_term - c_before_kill, (kTermAt - kKillAt) / 4);
  // Every call from kAfterBExits on started after B had exited, so C served each of them
  // (and perhaps one more: a call of the other thread in flight at the snapshot).
  EXPECT_GE(c_final - c_after_b_exit, kCalls - kAfterBExits);
  EXPECT_LE(c_final - c_after_b_exit, kCalls - kAfterBExits + kThreads - 1);

  // B's log has one line per call: how many it refused while draining (retried elsewhere).
  const std::string b_log = ReadWholeFile(b.log_path());
  int b_refused = 0;
  for (size_t at = 0; (at = b_log.find("Compute UNAVAILABLE", at)) != std::string::npos; ++at) {
    ++b_refused;
  }
  std::printf(
      "Compute OK per replica (/metrics): before the SIGKILL of A a=%lld b=%lld c=%lld; "
      "before the SIGTERM of B b=%lld c=%lld; C at the end %lld, %lld of them after B "
      "exited; B refused %d calls while draining\n",
      static_cast<long long>(a_before_kill), static_cast<long long>(b_before_kill),
      static_cast<long long>(c_before_kill), static_cast<long long>(b_before_term),
      static_cast<long long>(c_before_term), static_cast<long long>(c_final),
      static_cast<long long>(c_final - c_after_b_exit), b_refused);
  replicas.clear();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace actserve
