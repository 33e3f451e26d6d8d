// The actserve.v1.ActivationService implementation: a thin adapter between the wire
// messages and the compute engine (src/engine.h), on gRPC's callback API.
//
// Compute and ComputeStream take their messages as raw gRPC byte buffers, so that a
// tensor's bytes are copied once on the way in and never on the way out
// (proto/tensor_wire.h): the request's tensor data is copied straight from the received
// slices into pooled, already-faulted buffers (server/buffer_pool.h); the engine computes
// in place where the input is not needed again (the output over the input, the input
// gradient over grad_output, or over the input in backward mode) and otherwise into
// another pooled buffer; and those buffers become the response's slices, returning to
// the pool once gRPC has sent them. Small batches run on the gRPC thread that received
// them; larger ones run on the compute pool, and the call is finished from the worker, so
// gRPC's threads are never blocked by arithmetic. A Compute call that is finished before
// its handler returns (small batches, and every refusal or error found before computing)
// is finished through gRPC's default reactor: a reactor of our own would have its OnDone
// run on gRPC's executor thread, a thread hop per call that costs a small call more than
// all of its bookkeeping.
//
// ComputeStream is pipelined: while batch k computes, batch k+1 is being received and
// batch k-1 sent. At most `stream_window` batches are held per stream (from the read that
// receives one until its response has been sent); with the window full the server reads
// no more, so HTTP/2 flow control stops a client that sends faster than it reads, and a
// stream's memory is bounded by the window, not by what the client sends. Responses go
// out in request order.
//
// Admission, before any work, is the server's one CallGate (server/call_gate.h), shared
// with the Open Inference Protocol's doors: draining, the bearer token, calls in flight
// (Compute counted with the other doors' unary calls, streams apart). Limits enforced
// afterwards: items per request and dimensions per tensor (`max_items`, `max_rank`,
// while parsing), tensor memory of all calls together (`max_tensor_memory_bytes`: the
// engine's scratch is reserved, then each buffer charged as it is taken), response size
// (`max_message_bytes`, checked before computing), compute queue length (pool full).
// The engine enforces elements per request; gRPC enforces received message size.
// Running out of memory fails the one request with RESOURCE_EXHAUSTED. A cancelled call
// or an expired deadline sets the flag the engine checks between chunks of work and
// between items; the call then ends with DEADLINE_EXCEEDED when its deadline has passed
// and CANCELLED otherwise.
//
// Every call, admitted or not, ends in exactly one log line (info when OK, warning
// otherwise: method, status, items, elements, bytes, latency, peer; never metadata) and
// one RecordCall on the metrics. All errors go through wire::ToGrpcStatus (proto/grpc_status.h).
#ifndef ACTSERVE_SERVER_ACTIVATION_SERVICE_H_
#define ACTSERVE_SERVER_ACTIVATION_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "actserve/v1/activation.grpc.pb.h"
#include "server/call_gate.h"
#include "server/buffer_pool.h"
#include "server/server_options.h"
#include "src/engine.h"
#include "src/thread_pool.h"

namespace actserve {
namespace server {

// The gate's Admit for a gRPC call (of either protocol), with the call's "authorization"
// metadata.
absl::Status AdmitGrpcCall(CallGate& gate, const grpc::CallbackServerContext& context,
                           CallKind kind);

// Thread-safe: gRPC calls its methods concurrently. `engine`, `pool` and `gate` are
// borrowed and must outlive the service and every call it started (Server destroys them
// in that order).
class ActivationServiceImpl final
    : public v1::ActivationService::WithRawCallbackMethod_Compute<
          v1::ActivationService::WithRawCallbackMethod_ComputeStream<
              v1::ActivationService::WithCallbackMethod_ListActivations<
                  v1::ActivationService::Service>>> {
 public:
  // `options` gives the limits that are enforced here and reported by ListActivations.
  ActivationServiceImpl(const Engine* engine, ThreadPool* pool,
                        const ServerOptions& options, CallGate* gate);
  ActivationServiceImpl(const ActivationServiceImpl&) = delete;
  ActivationServiceImpl& operator=(const ActivationServiceImpl&) = delete;

  // The request and response are serialized v1::ComputeRequest / v1::ComputeResponse.
  grpc::ServerUnaryReactor* Compute(grpc::CallbackServerContext* context,
                                    const grpc::ByteBuffer* request,
                                    grpc::ByteBuffer* response) override;

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* ComputeStream(
      grpc::CallbackServerContext* context) override;

  grpc::ServerUnaryReactor* ListActivations(
      grpc::CallbackServerContext* context, const v1::ListActivationsRequest* request,
      v1::ListActivationsResponse* response) override;

  // How this service's calls are counted by the gate (call_gate.h).
  using CallKind = server::CallKind;

  // The pool of tensor buffers; the Open Inference Protocol's doors share it.
  const std::shared_ptr<BufferPool>& buffers() const { return buffers_; }

  // The ListActivations answer, built once from the catalogue and the options.
  const v1::ListActivationsResponse& list_response() const { return list_response_; }

  // --- For the reactors in activation_service.cc; not part of the service's API. ---

  // AdmitGrpcCall through the service's gate. An OK return must be matched by one
  // ReleaseSlot of the same kind.
  absl::Status AdmitCall(const grpc::CallbackServerContext& context, CallKind kind);
  void ReleaseSlot(CallKind kind);

  // A parsed, validated batch with its result buffers (defined in the .cc file).
  struct PreparedBatch;

  // Parses and validates the serialized ComputeRequest `request` (its slices are released
  // on return) and gives the batch its result buffers; the error found first otherwise.
  // Adds the batch to `stats` (batches and received bytes always; items and elements
  // when it is valid).
  absl::StatusOr<std::shared_ptr<PreparedBatch>> PrepareBatch(grpc::ByteBuffer request,
                                                              CallStats* stats);

  // True when `batch` is small enough (options().inline_bytes) to be computed on the
  // thread that received it rather than on a compute worker.
  bool ComputesInline(const PreparedBatch& batch) const;

  // Computes `batch` on the calling thread and returns the serialized ComputeResponse;
  // adds the sent bytes to `stats`. `cancelled` (may be null) is polled by the engine
  // between chunks.
  absl::StatusOr<grpc::ByteBuffer> ComputeBatch(PreparedBatch& batch,
                                                const std::atomic<bool>* cancelled,
                                                CallStats* stats);

  // Computes `batch` on a compute worker and calls `done` there with ComputeBatch's
  // result, or at once with ResourceExhausted when the compute queue is full. `stats`
  // must stay alive until `done` runs.
  void ScheduleBatch(std::shared_ptr<PreparedBatch> batch, const std::atomic<bool>* cancelled,
                     CallStats* stats,
                     std::function<void(absl::StatusOr<grpc::ByteBuffer>)> done);

  // PrepareBatch, then ComputeBatch before returning (small batches, and every error
  // found before computing) or ScheduleBatch; `done` is called exactly once.
  void RunBatch(grpc::ByteBuffer request, const std::atomic<bool>* cancelled,
                CallStats* stats,
                std::function<void(absl::StatusOr<grpc::ByteBuffer>)> done);

  const ServerOptions& options() const { return options_; }

  // The call's final status: a Cancelled from the engine becomes DeadlineExceeded when
  // the call's deadline has passed (a client cancel stays Cancelled).
  static absl::Status ResolveCancellation(absl::Status status,
                                          const grpc::CallbackServerContext& context);

  // Logs the call's one line and records its metrics. `status` is the final one.
  void RecordCall(absl::string_view method, const grpc::CallbackServerContext& context,
                  absl::Time start, const CallStats& stats, const absl::Status& status);

 private:
  const Engine& engine_;
  ThreadPool& pool_;
  const ServerOptions options_;
  CallGate& gate_;
  v1::ListActivationsResponse list_response_;
  const std::shared_ptr<BufferPool> buffers_;

};

}  // namespace server
}  // namespace actserve

#endif  // ACTSERVE_SERVER_ACTIVATION_SERVICE_H_
