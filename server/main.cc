// actserve: the activation-function gRPC server.
//
//   actserve --address=0.0.0.0:50051 --threads=8 --log_level=info \
//            --tls_cert=server.crt --tls_key=server.key --auth_token_file=tokens
//
// SIGINT or SIGTERM turns health NOT_SERVING, serves new calls for --drain_delay more (a
// second signal ends that), then refuses new calls with UNAVAILABLE while in-flight calls
// finish (up to --shutdown_grace), closes the client connections and exits 0; a client
// that retries UNAVAILABLE loses no call (Server::Shutdown in server.h).
// SIGHUP re-reads --auth_token_file (a bad file keeps the old tokens).
#include <malloc.h>
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
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
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
ABSL_FLAG(int64_t, max_items, 16384,
          "most items per request (or per ComputeStream message); 0: unlimited");
ABSL_FLAG(int, max_rank, 32, "most dimensions of any tensor in a request; 0: unlimited");
ABSL_FLAG(int, max_inflight, 64,
          "most Compute calls in progress; more are refused at once with "
          "RESOURCE_EXHAUSTED; 0: unlimited");
ABSL_FLAG(int, max_streams, 64,
          "most ComputeStream calls open at once, counted apart from --max_inflight; more "
          "are refused at once with RESOURCE_EXHAUSTED; 0: unlimited");
ABSL_FLAG(int64_t, max_tensor_memory_bytes, int64_t{4} << 30 /* 4 GiB */,
          "most bytes of tensor memory held by all calls in flight together; a request "
          "that would need more is refused with RESOURCE_EXHAUSTED; 0: unlimited");
ABSL_FLAG(bool, fill_buffers_with_canary, false,
          "for tests: fill every tensor buffer with a canary pattern before use, so that a "
          "reply byte the call did not write would show");
ABSL_FLAG(int64_t, max_queued_batches, 1024,
          "batches that may wait for a compute thread; more are refused at once with "
          "RESOURCE_EXHAUSTED");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(5),
          "on SIGINT/SIGTERM, after --drain_delay, how long in-flight calls may finish "
          "before being cancelled (a duration: 500ms, 5s, 1m); health is NOT_SERVING and "
          "new calls are refused meanwhile");
ABSL_FLAG(absl::Duration, drain_delay, absl::Seconds(3),
          "on SIGINT/SIGTERM, how long new calls are still served after health has "
          "turned NOT_SERVING, so that load balancers move away before calls are refused "
          "(a duration: 0, 500ms, 3s); --shutdown_grace follows it; a second "
          "SIGINT/SIGTERM ends it at once");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain of the server; with --tls_key, serve TLS only");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA certificates; set: mutual TLS, clients must present a certificate "
          "signed by one of them");
ABSL_FLAG(std::string, auth_token_file, "",
          "file of bearer tokens, one per line ('#' comments); set: calls need "
          "'authorization: Bearer <token>' (health and reflection stay open); "
          "re-read on SIGHUP");
ABSL_FLAG(std::string, metrics_address, "0.0.0.0:9464",
          "host:port of the Prometheus /metrics endpoint (plain HTTP); empty disables");
ABSL_FLAG(std::string, http_address, "localhost:8000",
          "host:port of the Open Inference Protocol's HTTP/REST routes (KServe v2, /v2/...; "
          "8000 as Triton's); port 0 picks a free port; empty: no REST door");
ABSL_FLAG(int64_t, memory_quota_bytes, int64_t{1} << 30 /* 1 GiB */,
          "memory gRPC may use for connections and messages (ResourceQuota), in bytes; "
          "0: unlimited");
ABSL_FLAG(absl::Duration, keepalive_time, absl::Seconds(60),
          "ping a client after its connection has been idle this long (a duration: 30s, "
          "2m)");
ABSL_FLAG(absl::Duration, keepalive_timeout, absl::Seconds(20),
          "close a connection whose keepalive ping is not answered within this duration");
ABSL_FLAG(absl::Duration, keepalive_min_client_interval, absl::Seconds(10),
          "shortest interval between a client's keepalive pings that is tolerated "
          "(a duration); more frequent pings get GOAWAY");
ABSL_FLAG(absl::Duration, max_connection_age, absl::Minutes(30),
          "close connections after this long (GOAWAY) so clients reconnect and "
          "rebalance, e.g. over new Kubernetes pods (a duration: 30m, 1h; inf: never)");
ABSL_FLAG(absl::Duration, max_connection_age_grace, absl::Minutes(5),
          "after --max_connection_age, how long calls on the old connection may still "
          "run (a duration)");
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
  options.max_items = absl::GetFlag(FLAGS_max_items);
  options.max_rank = absl::GetFlag(FLAGS_max_rank);
  options.max_inflight = absl::GetFlag(FLAGS_max_inflight);
  options.max_streams = absl::GetFlag(FLAGS_max_streams);
  options.max_tensor_memory_bytes = absl::GetFlag(FLAGS_max_tensor_memory_bytes);
  options.fill_buffers_with_canary = absl::GetFlag(FLAGS_fill_buffers_with_canary);
  options.max_queued = static_cast<size_t>(absl::GetFlag(FLAGS_max_queued_batches));
  options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  options.drain_delay = absl::GetFlag(FLAGS_drain_delay);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  options.auth_token_file = absl::GetFlag(FLAGS_auth_token_file);
  options.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  options.http_address = absl::GetFlag(FLAGS_http_address);
  options.memory_quota_bytes = absl::GetFlag(FLAGS_memory_quota_bytes);
  options.keepalive_time = absl::GetFlag(FLAGS_keepalive_time);
  options.keepalive_timeout = absl::GetFlag(FLAGS_keepalive_timeout);
  options.keepalive_min_client_interval = absl::GetFlag(FLAGS_keepalive_min_client_interval);
  options.max_connection_age = absl::GetFlag(FLAGS_max_connection_age);
  options.max_connection_age_grace = absl::GetFlag(FLAGS_max_connection_age_grace);
  return options;
}

// Keeps freed message memory in the process for the next call instead of handing it back
// to the kernel. gRPC receives each message into freshly malloc'd slices, and glibc by
// default serves a block above its mmap threshold (dynamic, 128 KiB to 32 MiB) with a new
// mapping and trims a freed heap top above 128 KiB, so every large call would touch fresh
// pages: a page fault per 4 KiB of message, about 12 us each on the 2-core reference VM,
// more than computing the bytes. Fixing the threshold at 32 MiB keeps messages up to that
// size on the heap, and a 1 GiB trim threshold keeps what they freed. Done before any
// thread exists; the same as GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:
// glibc.malloc.trim_threshold=1073741824, without users having to know it.
void KeepFreedMemoryForReuse() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

// Debian builds Abseil without NDEBUG, so every absl::Mutex lock also runs the deadlock
// detector, which keeps a graph of lock order (about 150 instructions per lock, counted
// with callgrind; a batch takes a few locks per item). The server's lock order is fixed
// and exercised by the test suites, which keep the detector on.
void SkipMutexDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace

int main(int argc, char** argv) {
  KeepFreedMemoryForReuse();
  SkipMutexDeadlockDetection();
  absl::SetProgramUsageMessage(
      "actserve: computes activation functions and their gradients over gRPC");
  absl::ParseCommandLine(argc, argv);

  LogLevel level = LogLevel::kInfo;
  if (!actserve::server::ParseLogLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    std::fprintf(stderr, "actserve: --log_level must be debug, info, warning or error\n");
    return 2;
  }
  actserve::server::SetLogLevel(level);
  if (absl::GetFlag(FLAGS_max_queued_batches) < 0) {
    std::fprintf(stderr, "actserve: --max_queued_batches must be >= 0\n");
    return 2;
  }

  // Block the signals handled here before any thread exists, so every thread inherits
  // the mask and they are delivered only to the waiter below, through sigwait: no code
  // runs in a signal handler, so nothing has to be async-signal-safe.
  sigset_t handled_signals;
  sigemptyset(&handled_signals);
  sigaddset(&handled_signals, SIGINT);
  sigaddset(&handled_signals, SIGTERM);
  sigaddset(&handled_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &handled_signals, nullptr);

  absl::StatusOr<std::unique_ptr<actserve::server::Server>> server =
      actserve::server::Server::Start(OptionsFromFlags());
  if (!server.ok()) {
    Log(LogLevel::kError, absl::StrCat("cannot start: ", server.status().ToString()));
    return 1;
  }

  // Shutdown runs on its own thread, so that the waiter can still take signals: a second
  // SIGINT/SIGTERM ends the drain delay. The waiter polls (sigtimedwait) to notice when
  // the shutdown is over.
  absl::Notification shut_down;
  std::thread signal_waiter([&handled_signals, &server, &shut_down] {
    std::thread stopper;
    while (!shut_down.HasBeenNotified()) {
      const timespec poll = {0, 100 * 1000 * 1000};  // 100 ms
      const int signal_number = sigtimedwait(&handled_signals, nullptr, &poll);
      if (signal_number < 0) continue;  // timeout or EINTR
      if (signal_number == SIGHUP) {
        const absl::StatusOr<size_t> tokens = (*server)->ReloadTokens();
        Log(tokens.ok() ? LogLevel::kInfo : LogLevel::kWarning,
            tokens.ok() ? absl::StrCat("SIGHUP: reloaded ", *tokens, " auth tokens")
                        : absl::StrCat("SIGHUP: tokens not reloaded, keeping the old "
                                       "ones: ",
                                       tokens.status().ToString()));
        continue;
      }
      const char* name = signal_number == SIGTERM ? "SIGTERM" : "SIGINT";
      if (stopper.joinable()) {
        Log(LogLevel::kInfo, absl::StrCat("received ", name, " again: ending the drain delay"));
        (*server)->EndDrainDelay();
        continue;
      }
      Log(LogLevel::kInfo, absl::StrCat("received ", name));
      stopper = std::thread([&server, &shut_down] {
        (*server)->Shutdown();
        shut_down.Notify();
      });
    }
    stopper.join();
  });
  (*server)->Wait();  // returns once the Shutdown has drained every call
  signal_waiter.join();
  server->reset();
  actserve::server::FlushLog();  // info lines are buffered (server/logging.h)
  return 0;
}
