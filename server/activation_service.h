// The actserve.v1.ActivationService implementation: a thin adapter between the wire
// messages and the compute engine (src/engine.h), on gRPC's callback API.
//
// Per batch: the request becomes engine items that VIEW its bytes (wire::ItemsFromProto),
// the engine validates them and gives result sizes (Engine::Plan), the response's byte
// strings are sized, and the engine computes straight into them (Engine::Compute), so a
// tensor is never copied between the request and the response. Small batches run on the
// gRPC thread that received them; larger ones run on the compute pool, and the call is
// finished from the worker, so gRPC's threads are never blocked by arithmetic.
//
// Limits enforced here: calls in flight (`max_inflight`), response size
// (`max_message_bytes`, checked before computing), compute queue length (pool full). The
// engine enforces elements per request; gRPC enforces received message size. A cancelled
// call or an expired deadline sets the flag the engine checks between chunks of work.
//
// All errors go through ToGrpcStatus (status_util.h).
#ifndef ACTSERVE_SERVER_ACTIVATION_SERVICE_H_
#define ACTSERVE_SERVER_ACTIVATION_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>

#include "absl/status/status.h"
#include "actserve/v1/activation.grpc.pb.h"
#include "server/server_options.h"
#include "src/engine.h"
#include "src/thread_pool.h"

namespace actserve {
namespace server {

// Thread-safe: gRPC calls its methods concurrently. `engine` and `pool` are borrowed and
// must outlive the service and every call it started (Server destroys them in that
// order).
class ActivationServiceImpl final : public v1::ActivationService::CallbackService {
 public:
  // `options` gives the limits that are enforced here and reported by ListActivations.
  ActivationServiceImpl(const Engine* engine, ThreadPool* pool,
                        const ServerOptions& options);
  ActivationServiceImpl(const ActivationServiceImpl&) = delete;
  ActivationServiceImpl& operator=(const ActivationServiceImpl&) = delete;

  grpc::ServerUnaryReactor* Compute(grpc::CallbackServerContext* context,
                                    const v1::ComputeRequest* request,
                                    v1::ComputeResponse* response) override;

  grpc::ServerBidiReactor<v1::ComputeRequest, v1::ComputeResponse>* ComputeStream(
      grpc::CallbackServerContext* context) override;

  grpc::ServerUnaryReactor* ListActivations(
      grpc::CallbackServerContext* context, const v1::ListActivationsRequest* request,
      v1::ListActivationsResponse* response) override;

  // Compute and ComputeStream calls currently admitted.
  int inflight() const { return inflight_.load(std::memory_order_relaxed); }

  // The ListActivations answer, built once from the catalogue and the options.
  const v1::ListActivationsResponse& list_response() const { return list_response_; }

  // --- For the reactors in activation_service.cc; not part of the service's API. ---

  // Takes an in-flight slot. ResourceExhausted when `max_inflight` calls hold one; then
  // no slot is taken. Every OK return must be matched by one ReleaseSlot.
  absl::Status AdmitCall();
  void ReleaseSlot();

  // Computes `request` into `response` and then calls `done` exactly once with the
  // outcome, either before returning (small batches, and every error found before
  // computing) or later on a compute worker. `request` and `response` must stay alive
  // and untouched until `done` runs. `cancelled` is polled by the engine between chunks.
  void RunBatch(const v1::ComputeRequest& request, v1::ComputeResponse* response,
                const std::atomic<bool>* cancelled,
                std::function<void(absl::Status)> done);

 private:
  const Engine& engine_;
  ThreadPool& pool_;
  const ServerOptions options_;
  v1::ListActivationsResponse list_response_;
  std::atomic<int> inflight_{0};
};

}  // namespace server
}  // namespace actserve

#endif  // ACTSERVE_SERVER_ACTIVATION_SERVICE_H_
