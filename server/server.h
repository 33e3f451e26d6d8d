// The actserve server: the ActivationService, the Open Inference Protocol's
// GRPCInferenceService (server/inference/), health checking and reflection on one gRPC
// port, and the protocol's HTTP/REST routes on their own port (options.http_address),
// with the compute engine and its worker pool behind them.
//
//   actserve::server::ServerOptions options;
//   options.address = "127.0.0.1:0";  // any free port
//   absl::StatusOr<std::unique_ptr<actserve::server::Server>> server =
//       actserve::server::Server::Start(options);
//   if (!server.ok()) return server.status();
//   int port = (*server)->port();       // connect clients here
//   ...
//   (*server)->Shutdown();              // from any thread, e.g. a signal waiter
//   (*server)->Wait();                  // returns once shut down
//
// Health: the standard grpc.health.v1.Health service reports SERVING for "" and for
// "actserve.v1.ActivationService" while running, NOT_SERVING once shutdown begins.
// Reflection: grpc.reflection.v1alpha.ServerReflection lists the services. Both stay
// open without a token.
//
// Transport: TLS when options.tls_cert_file/tls_key_file are set (mutual TLS with
// tls_client_ca_file), keepalive pings, a maximum connection age, and a gRPC
// ResourceQuota bounding gRPC's memory. Metrics: see metrics.h; exposed over HTTP when
// options.metrics_address is set.
#ifndef ACTSERVE_SERVER_SERVER_H_
#define ACTSERVE_SERVER_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/activation_service.h"
#include "server/auth.h"
#include "server/call_gate.h"
#include "server/inference/grpc_service.h"
#include "server/inference/http_door.h"
#include "server/metrics.h"
#include "server/server_options.h"
#include "src/engine.h"
#include "src/thread_pool.h"

namespace actserve {
namespace server {
namespace server_internal {
class CallTracker;  // server.cc
}  // namespace server_internal

// Applies the transport settings of `options` to `builder`: message size limits, the
// memory quota, keepalive, connection age, no SO_REUSEPORT. Server::Start uses it; the
// service benchmark gives its bare echo server the same settings, so that the two are
// compared on equal terms.
void ApplyTransportOptions(const ServerOptions& options, grpc::ServerBuilder* builder);

// Thread-safe. Not copyable. Destruction shuts the server down (as Shutdown) and waits.
class Server {
 public:
  // Builds, binds and starts a server from `options`. InvalidArgument for options out of
  // range (negative limits, durations or threads, empty address, a TLS key without a
  // certificate or the reverse, a client CA without a certificate) and for a TLS or
  // token file that cannot be read or holds nothing usable (the message names the file,
  // never its contents); Unavailable when the address or the metrics address cannot be
  // bound (in use, also by another actserve: SO_REUSEPORT is off; bad host).
  // Logs the bound address at info level.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options);

  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The port actually bound (the one chosen when options.address asked for port 0).
  int port() const { return port_; }

  // The metrics exposer's port; 0 when options.metrics_address is empty.
  int metrics_port() const { return metrics_port_; }

  // The HTTP/REST door's port; 0 when options.http_address is empty.
  int http_port() const { return http_port_; }

  const ServerOptions& options() const { return options_; }

  // Re-reads options.auth_token_file (e.g. on SIGHUP); on failure the old tokens stay in
  // force and the error is returned. Returns the number of tokens now in force.
  // FailedPrecondition when the server was started without a token file. Thread-safe.
  absl::StatusOr<size_t> ReloadTokens();

  // The metrics, for inspection (e.g. RequestCount()); thread-safe.
  ServerMetrics& metrics() { return *metrics_; }

  // The admission of every door, for inspection (e.g. inflight()).
  const CallGate& gate() const { return *gate_; }

  // Drains, then stops, so that no client loses a call, including a client without
  // health checking that retries UNAVAILABLE:
  //  1. marks health NOT_SERVING (health checks are still answered, so probes see it)
  //     and goes on serving new calls for options.drain_delay (or until EndDrainDelay);
  //  2. refuses new calls of either protocol (CallGate) with UNAVAILABLE and waits, up to
  //     options.shutdown_grace, until every such call, streams included, has
  //     ended and gRPC is done with it;
  //  3. closes every client connection, so that calls still on their way fail with
  //     UNAVAILABLE before they reach the server (their clients retry them elsewhere),
  //     instead of being cancelled (CANCELLED, not retried) by the next step;
  //  4. stops the REST door (it answers the requests it has begun first) and the gRPC
  //     server, cancelling whatever is still running there.
  // Blocks until every call has finished. Idempotent; safe to call from any thread,
  // concurrently with Wait().
  void Shutdown();

  // Ends the drain delay of a Shutdown in progress (or of the next one) at once.
  // Thread-safe.
  void EndDrainDelay();

  // Blocks until Shutdown() has completed.
  void Wait();

 private:
  explicit Server(const ServerOptions& options);

  const ServerOptions options_;
  // Built in this order (the engine and the service borrow the pool; the service
  // borrows the engine); ~Server destroys them in the order its comment explains.
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<TokenAuthenticator> authenticator_;  // null: no authentication
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<CallGate> gate_;  // shared by every door
  std::unique_ptr<ActivationServiceImpl> service_;
  std::unique_ptr<inference::InferenceServiceImpl> inference_service_;
  // Counts ActivationService calls until gRPC has destroyed them (step 2 of Shutdown);
  // the grpc::Server's interceptor borrows it.
  std::unique_ptr<server_internal::CallTracker> call_tracker_;
  std::unique_ptr<grpc::Server> grpc_server_;
  // The protocol's HTTP/REST routes; null when options.http_address is empty.
  std::unique_ptr<inference::HttpDoor> http_door_;
  int port_ = 0;
  int http_port_ = 0;
  int metrics_port_ = 0;
  // True until Shutdown begins: health NOT_SERVING, the protocol's ServerReady false.
  std::atomic<bool> serving_{true};
  bool ready() const { return serving_.load(); }

  absl::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
  // Not shutdown_mu_: Shutdown holds that for its whole duration.
  absl::Mutex drain_delay_mu_;
  bool drain_delay_ended_ ABSL_GUARDED_BY(drain_delay_mu_) = false;
};

}  // namespace server
}  // namespace actserve

#endif  // ACTSERVE_SERVER_SERVER_H_
