// See server.h.
#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/logging.h"

namespace actserve {
namespace server {
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
  if (options.max_inflight < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_inflight must be >= 0 (0: unlimited), got ", options.max_inflight));
  }
  if (options.shutdown_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("shutdown_grace must be >= 0");
  }
  return absl::OkStatus();
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
  engine_options.pool = pool;
  return engine_options;
}

}  // namespace

Server::Server(const ServerOptions& options)
    : options_(options),
      pool_(std::make_unique<ThreadPool>(
          ThreadPoolOptions{options.threads, options.max_queued})),
      engine_(std::make_unique<Engine>(MakeEngineOptions(options, pool_.get()))),
      service_(
          std::make_unique<ActivationServiceImpl>(engine_.get(), pool_.get(), options)) {}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  if (absl::Status valid = ValidateOptions(options); !valid.ok()) return valid;
  std::unique_ptr<Server> server(new Server(options));

  // Both are process-wide switches that apply to servers built afterwards.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.address, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(GrpcMessageLimit(options.max_message_bytes));
  builder.SetMaxSendMessageSize(GrpcMessageLimit(options.max_message_bytes));
  // gRPC sets SO_REUSEPORT by default, so a second server on a busy port would start and
  // silently share its traffic; refuse instead, so "address in use" is reported.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(server->service_.get());
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || port == 0) {
    // BuildAndStart has logged gRPC's own reason; `server` is destroyed without a
    // grpc::Server, which its destructor allows.
    return absl::UnavailableError(
        absl::StrCat("cannot listen on '", options.address,
                     "' (address in use, or not a valid host:port)"));
  }
  server->port_ = port;
  if (grpc::HealthCheckServiceInterface* health =
          server->grpc_server_->GetHealthCheckService()) {
    health->SetServingStatus("", true);
    health->SetServingStatus(kServiceName, true);
  }
  Log(LogLevel::kInfo,
      absl::StrCat("actserve ", ACTSERVE_VERSION, " listening on ", options.address,
                   " (port ", port, "), ", server->pool_->threads(),
                   " compute threads, max_message_bytes=", options.max_message_bytes,
                   " max_elements=", options.max_elements,
                   " max_inflight=", options.max_inflight));
  return server;
}

Server::~Server() {
  Shutdown();
  // Order matters. Once the grpc::Server is gone every call has finished; the pool then
  // runs whatever is still queued (helpers of a finished ParallelFor, which may touch
  // the engine) and joins its workers; only then may the service and the engine go.
  grpc_server_.reset();
  pool_.reset();
  service_.reset();
  engine_.reset();
}

void Server::Shutdown() {
  absl::MutexLock lock(&shutdown_mu_);
  if (shut_down_ || grpc_server_ == nullptr) {
    shut_down_ = true;
    return;
  }
  shut_down_ = true;
  Log(LogLevel::kInfo, absl::StrCat("shutting down: draining calls for up to ",
                                    absl::FormatDuration(options_.shutdown_grace)));
  // Probes see NOT_SERVING first, so load balancers stop sending new calls.
  if (grpc::HealthCheckServiceInterface* health = grpc_server_->GetHealthCheckService()) {
    health->SetServingStatus(false);
  }
  grpc_server_->Shutdown(absl::ToChronoTime(absl::Now() + options_.shutdown_grace));
  Log(LogLevel::kInfo, "shut down");
}

void Server::Wait() {
  if (grpc_server_ != nullptr) grpc_server_->Wait();
}

}  // namespace server
}  // namespace actserve
