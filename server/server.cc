// See server.h.
#include "server/server.h"

#include <grpc/grpc.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/support/server_interceptor.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/logging.h"

namespace actserve {
namespace server {
namespace server_internal {

// Counts the ActivationService calls that gRPC has not destroyed yet. A call's
// interceptor is created with the call and destroyed with it, after its reactor's OnDone,
// i.e. once gRPC has written its status. The service's own count
// (ActivationServiceImpl::inflight) drops just before the handler calls Finish: too early
// to close the connection under the call. Thread-safe.
class CallTracker {
 public:
  CallTracker() = default;
  CallTracker(const CallTracker&) = delete;
  CallTracker& operator=(const CallTracker&) = delete;

  // An interceptor that counts the call for its lifetime, or null (not counted) for a
  // method outside the ActivationService: a health watch lasts as long as its client
  // wants.
  grpc::experimental::Interceptor* MaybeTrack(const grpc::experimental::ServerRpcInfo& info) {
    if (!absl::StartsWith(info.method(), "/actserve.v1.ActivationService/") &&
        !absl::StartsWith(info.method(), "/inference.GRPCInferenceService/")) {
      return nullptr;
    }
    absl::MutexLock lock(&mu_);
    ++live_;
    return new Tracked(this);
  }

  // Waits until no ActivationService call is alive (a moment without one is enough; new
  // ones may follow), or until `deadline`. Whether it got there.
  bool WaitUntilNone(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    auto none = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return live_ == 0; };
    return mu_.AwaitWithDeadline(absl::Condition(&none), deadline);
  }

 private:
  // Only its lifetime matters: every hook proceeds at once.
  class Tracked final : public grpc::experimental::Interceptor {
   public:
    explicit Tracked(CallTracker* tracker) : tracker_(tracker) {}
    ~Tracked() override {
      absl::MutexLock lock(&tracker_->mu_);
      --tracker_->live_;
    }
    void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
      methods->Proceed();
    }

   private:
    CallTracker* const tracker_;
  };

  absl::Mutex mu_;
  int64_t live_ ABSL_GUARDED_BY(mu_) = 0;
};

// The grpc::Server owns its interceptor factories; this one borrows the Server's
// CallTracker, which outlives the grpc::Server.
class CallTrackerFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CallTrackerFactory(CallTracker* tracker) : tracker_(tracker) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return tracker_->MaybeTrack(*info);
  }

 private:
  CallTracker* const tracker_;
};

}  // namespace server_internal

namespace {

constexpr char kServiceName[] = "actserve.v1.ActivationService";

absl::Status ValidateOptions(const ServerOptions& options) {
  if (options.address.empty()) return absl::InvalidArgumentError("address is empty");
  if (options.threads < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("threads must be >= 0 (0: one per core), got ", options.threads));
  }
  if (options.max_message_bytes < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_message_bytes must be >= 0 (0: unlimited), got ",
                     options.max_message_bytes));
  }
  if (options.max_elements < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_elements must be >= 0 (0: unlimited), got ", options.max_elements));
  }
  const struct {
    const char* name;
    int64_t value;
  } counts[] = {
      {"max_items", options.max_items},
      {"max_rank", options.max_rank},
      {"max_inflight", options.max_inflight},
      {"max_streams", options.max_streams},
      {"max_tensor_memory_bytes", options.max_tensor_memory_bytes},
  };
  for (const auto& count : counts) {
    if (count.value < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(count.name, " must be >= 0 (0: unlimited), got ", count.value));
    }
  }
  if (options.shutdown_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("shutdown_grace must be >= 0");
  }
  if (options.drain_delay < absl::ZeroDuration() ||
      options.drain_delay == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError("drain_delay must be >= 0 and finite");
  }
  if (options.memory_quota_bytes < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "memory_quota_bytes must be >= 0 (0: unlimited), got ",
        options.memory_quota_bytes));
  }
  const struct {
    const char* name;
    absl::Duration value;
    absl::Duration minimum;
  } durations[] = {
      {"keepalive_time", options.keepalive_time, absl::Milliseconds(1)},
      {"keepalive_timeout", options.keepalive_timeout, absl::Milliseconds(1)},
      {"keepalive_min_client_interval", options.keepalive_min_client_interval,
       absl::ZeroDuration()},
      {"max_connection_age", options.max_connection_age, absl::Milliseconds(1)},
      {"max_connection_age_grace", options.max_connection_age_grace,
       absl::ZeroDuration()},
  };
  for (const auto& duration : durations) {
    if (duration.value < duration.minimum) {
      return absl::InvalidArgumentError(
          absl::StrCat(duration.name, " must be >= ", absl::FormatDuration(duration.minimum),
                       ", got ", absl::FormatDuration(duration.value)));
    }
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "tls_cert and tls_key go together: give both for TLS, or neither");
  }
  if (!options.tls_client_ca_file.empty() && options.tls_cert_file.empty()) {
    return absl::InvalidArgumentError(
        "tls_client_ca (mutual TLS) needs tls_cert and tls_key");
  }
  return absl::OkStatus();
}

// gRPC takes durations as int milliseconds; INT_MAX is its "never".
int GrpcMilliseconds(absl::Duration duration) {
  if (duration == absl::InfiniteDuration()) return INT_MAX;
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(duration), INT_MAX));
}

// The contents of the PEM file `path`, given to the option `what`. The message names the
// file, never what is in it (it may be a private key).
absl::StatusOr<std::string> ReadPemFile(const std::string& path, absl::string_view what) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": cannot read '", path, "'"));
  }
  std::ostringstream contents;
  contents << file.rdbuf();
  std::string pem = contents.str();
  if (pem.find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": '", path, "' is not a PEM file (no -----BEGIN line)"));
  }
  return pem;
}

// Plaintext, TLS, or mutual TLS, from the options (already validated).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeCredentials(
    const ServerOptions& options) {
  if (options.tls_cert_file.empty()) return grpc::InsecureServerCredentials();
  absl::StatusOr<std::string> cert = ReadPemFile(options.tls_cert_file, "tls_cert");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPemFile(options.tls_key_file, "tls_key");
  if (!key.ok()) return key.status();
  const bool mutual = !options.tls_client_ca_file.empty();
  grpc::SslServerCredentialsOptions ssl(
      mutual ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
             : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  if (mutual) {
    absl::StatusOr<std::string> ca = ReadPemFile(options.tls_client_ca_file, "tls_client_ca");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = std::move(*ca);
  }
  ssl.pem_key_cert_pairs.push_back({std::move(*key), std::move(*cert)});
  return grpc::SslServerCredentials(ssl);
}

absl::string_view SecurityName(const ServerOptions& options) {
  if (options.tls_cert_file.empty()) return "plaintext";
  return options.tls_client_ca_file.empty() ? "TLS" : "mutual TLS";
}

// gRPC takes message sizes as int, with -1 for unlimited.
int GrpcMessageLimit(int64_t max_message_bytes) {
  if (max_message_bytes == 0) return -1;
  return static_cast<int>(std::min<int64_t>(max_message_bytes, INT_MAX));
}

// The engine shares the server's pool: a batch handed to a worker can spread a large
// item's chunks over the other idle workers.
EngineOptions MakeEngineOptions(const ServerOptions& options, ThreadPool* pool) {
  EngineOptions engine_options;
  engine_options.max_elements = options.max_elements;
  engine_options.max_items = options.max_items;
  engine_options.max_rank = options.max_rank;
  engine_options.pool = pool;
  engine_options.before_item_for_testing = options.engine_before_item_for_testing;
  return engine_options;
}

}  // namespace

Server::Server(const ServerOptions& options)
    : options_(options),
      pool_(std::make_unique<ThreadPool>(
          ThreadPoolOptions{options.threads, options.max_queued})),
      engine_(std::make_unique<Engine>(MakeEngineOptions(options, pool_.get()))) {}

void ApplyTransportOptions(const ServerOptions& options, grpc::ServerBuilder* builder_ptr) {
  grpc::ServerBuilder& builder = *builder_ptr;
  builder.SetMaxReceiveMessageSize(GrpcMessageLimit(options.max_message_bytes));
  builder.SetMaxSendMessageSize(GrpcMessageLimit(options.max_message_bytes));
  // gRPC sets SO_REUSEPORT by default, so a second server on a busy port would start and
  // silently share its traffic; refuse instead, so "address in use" is reported.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (options.memory_quota_bytes > 0) {
    grpc::ResourceQuota quota("actserve");
    quota.Resize(static_cast<size_t>(options.memory_quota_bytes));
    builder.SetResourceQuota(quota);  // the builder keeps its own reference
  }
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             GrpcMilliseconds(options.keepalive_time));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             GrpcMilliseconds(options.keepalive_timeout));
  // Clients may keep an idle connection alive with their own pings, at most this often.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             GrpcMilliseconds(options.keepalive_min_client_interval));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                             GrpcMilliseconds(options.max_connection_age));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                             GrpcMilliseconds(options.max_connection_age_grace));
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  if (absl::Status valid = ValidateOptions(options); !valid.ok()) return valid;
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      MakeCredentials(options);
  if (!credentials.ok()) return credentials.status();
  std::unique_ptr<Server> server(new Server(options));
  if (!options.auth_token_file.empty()) {
    absl::StatusOr<std::unique_ptr<TokenAuthenticator>> authenticator =
        TokenAuthenticator::FromFile(options.auth_token_file);
    if (!authenticator.ok()) return authenticator.status();
    server->authenticator_ = std::move(*authenticator);
  }
  // The gauges read the service and the pool at scrape time; ~Server stops the exposer
  // before either goes away.
  Server* const raw = server.get();
  server->metrics_ = std::make_unique<ServerMetrics>(
      [raw] { return raw->gate_->inflight(); }, [raw] { return raw->pool_->queued(); });
  server->gate_ = std::make_unique<CallGate>(options, server->metrics_.get(),
                                             server->authenticator_.get());
  server->service_ = std::make_unique<ActivationServiceImpl>(
      server->engine_.get(), server->pool_.get(), options, server->gate_.get());
  server->inference_service_ = std::make_unique<inference::InferenceServiceImpl>(
      server->engine_.get(), server->pool_.get(), server->service_->buffers(), options,
      server->gate_.get(), [raw] { return raw->ready(); });

  // Both are process-wide switches that apply to servers built afterwards.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.address, *credentials, &port);
  ApplyTransportOptions(options, &builder);
  builder.RegisterService(server->service_.get());
  builder.RegisterService(server->inference_service_.get());
  server->call_tracker_ = std::make_unique<server_internal::CallTracker>();
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(
      std::make_unique<server_internal::CallTrackerFactory>(server->call_tracker_.get()));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || port == 0) {
    // BuildAndStart has logged gRPC's own reason; `server` is destroyed without a
    // grpc::Server, which its destructor allows.
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on '", options.address, "' (address in use, or not a valid ",
        "host:port", options.tls_cert_file.empty() ? "" : ", or TLS certificate/key rejected",
        ")"));
  }
  server->port_ = port;
  if (!options.metrics_address.empty()) {
    absl::StatusOr<int> metrics_port = server->metrics_->StartExposer(options.metrics_address);
    if (!metrics_port.ok()) return metrics_port.status();  // ~Server stops the server
    server->metrics_port_ = *metrics_port;
  }
  if (!options.http_address.empty()) {
    inference::HttpDoorDeps deps;
    deps.engine = server->engine_.get();
    deps.pool = server->pool_.get();
    deps.buffers = server->service_->buffers();
    deps.gate = server->gate_.get();
    deps.ready = [raw] { return raw->ready(); };
    absl::StatusOr<std::unique_ptr<inference::HttpDoor>> door =
        inference::HttpDoor::Start(options, std::move(deps));
    if (!door.ok()) return door.status();  // ~Server stops the gRPC server
    server->http_door_ = *std::move(door);
    server->http_port_ = server->http_door_->port();
  }
  if (grpc::HealthCheckServiceInterface* health =
          server->grpc_server_->GetHealthCheckService()) {
    health->SetServingStatus("", true);
    health->SetServingStatus(kServiceName, true);
  }
  Log(LogLevel::kInfo,
      absl::StrCat("actserve ", ACTSERVE_VERSION, " listening on ", options.address,
                   " (port ", port, ", ", SecurityName(options), "), ",
                   server->pool_->threads(),
                   " compute threads, max_message_bytes=", options.max_message_bytes,
                   " max_elements=", options.max_elements,
                   " max_items=", options.max_items, " max_rank=", options.max_rank,
                   " max_inflight=", options.max_inflight,
                   " max_streams=", options.max_streams,
                   " max_tensor_memory_bytes=", options.max_tensor_memory_bytes, ", auth ",
                   server->authenticator_ ? "bearer tokens" : "off", ", metrics ",
                   options.metrics_address.empty()
                       ? std::string("not exposed")
                       : absl::StrCat("on port ", server->metrics_port_),
                   ", Open Inference Protocol on the gRPC port"));
  return server;
}

absl::StatusOr<size_t> Server::ReloadTokens() {
  if (authenticator_ == nullptr) {
    return absl::FailedPreconditionError("no auth token file was configured");
  }
  return authenticator_->Reload();
}

Server::~Server() {
  Shutdown();
  http_door_.reset();  // stopped by Shutdown; it borrows everything below
  // Order matters. Once the grpc::Server is gone every call has finished, so nothing
  // records metrics any more; the exposer stops next, while the service and the pool its
  // gauges read are still there. The pool then runs whatever is still queued (helpers of
  // a finished ParallelFor, which may touch the engine) and joins its workers; only then
  // may the service and the engine go.
  grpc_server_.reset();
  metrics_.reset();
  pool_.reset();
  inference_service_.reset();
  service_.reset();
  engine_.reset();
  authenticator_.reset();
}

void Server::Shutdown() {
  absl::MutexLock lock(&shutdown_mu_);
  if (shut_down_ || grpc_server_ == nullptr) {
    shut_down_ = true;
    return;
  }
  shut_down_ = true;
  // Probes see NOT_SERVING first, so load balancers and health-checking clients stop
  // sending new calls; calls still on their way are served during the drain delay.
  // The gRPC server keeps running throughout, so health checks are answered.
  if (grpc::HealthCheckServiceInterface* health = grpc_server_->GetHealthCheckService()) {
    health->SetServingStatus(false);
  }
  serving_.store(false);
  if (options_.drain_delay > absl::ZeroDuration()) {
    Log(LogLevel::kInfo,
        absl::StrCat("shutting down: NOT_SERVING, still serving new calls for ",
                     absl::FormatDuration(options_.drain_delay),
                     " so that clients move away"));
    absl::MutexLock lock(&drain_delay_mu_);
    drain_delay_mu_.AwaitWithTimeout(absl::Condition(&drain_delay_ended_),
                                     options_.drain_delay);
  }
  // A client without health checking goes on sending here until its connection closes.
  // From now on its new calls are refused with UNAVAILABLE, which it retries on another
  // replica, while the calls in flight run to completion.
  Log(LogLevel::kInfo, absl::StrCat("shutting down: draining ", gate_->inflight(),
                                    " calls for up to ",
                                    absl::FormatDuration(options_.shutdown_grace)));
  gate_->StartDrain();
  const absl::Time deadline = absl::Now() + options_.shutdown_grace;
  const bool grpc_calls_ended = call_tracker_->WaitUntilNone(deadline);
  if (!grpc_calls_ended) {
    Log(LogLevel::kWarning,
        absl::StrCat("shutdown grace over: cancelling ", gate_->inflight(),
                     " calls still in flight"));
  }
  // grpc::Server::Shutdown marks the server as shut down before it sends GOAWAY, and a
  // call whose headers the server reads in between is cancelled by gRPC (gRPC 1.51,
  // Server::CallData::StartNewRpc -> KillZombie: RST_STREAM CANCEL, which the client
  // reports as CANCELLED and does not retry). A client without health checking sends
  // until it gets that GOAWAY, so a loaded server lost a call or two here. Closing every
  // connection first, without GOAWAY, fails the calls still on their way (and refusals
  // not yet sent) with UNAVAILABLE at the client, which retries them elsewhere; every
  // call the service admitted has ended by now, or the grace is over and it goes with
  // its connection, as do health watches and reflection streams. gRPC documents
  // grpc_server_cancel_all_calls for use after shutdown (its own Shutdown calls it at the
  // deadline); before it, it does the same to each connection (stop accepting streams,
  // close) and leaves the server and its listener alone; tests/python/
  // sigterm_drain_test.py fails if a gRPC upgrade changes that. A client reconnects
  // within a TCP and an HTTP/2 handshake, and a connection set up after the Shutdown
  // below has begun is closed by gRPC at once; only a call sent on a connection set up
  // in the microseconds in between could still be cancelled.
  // The REST door's calls were refused from the drain on too; those still in flight
  // (the gate's count, now that the gRPC calls have ended) get the rest of the grace,
  // then stopping the door stops their computations and answers them.
  if (http_door_ != nullptr) {
    // gRPC calls still running past the grace would hold compute workers that a REST
    // computation being stopped may wait for: cancel them first.
    if (!grpc_calls_ended) grpc_server_cancel_all_calls(grpc_server_->c_server());
    while (gate_->inflight() > 0 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    http_door_->Stop();
  }
  grpc_server_cancel_all_calls(grpc_server_->c_server());
  grpc_server_->Shutdown(absl::ToChronoTime(deadline));
  Log(LogLevel::kInfo, "shut down");
}

void Server::EndDrainDelay() {
  absl::MutexLock lock(&drain_delay_mu_);
  drain_delay_ended_ = true;
}

void Server::Wait() {
  if (grpc_server_ != nullptr) grpc_server_->Wait();
}

}  // namespace server
}  // namespace actserve
