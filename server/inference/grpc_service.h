// The Open Inference Protocol's (KServe v2) gRPC service, inference.GRPCInferenceService,
// on the server's gRPC port beside actserve.v1: a second door to the same engine, with the
// same limits, tokens, metrics, deadlines and drain (every call passes the server's
// CallGate), over the protocol-neutral models of model.h.
//
// ModelInfer takes its request as raw bytes: a scan of the wire format bounds what
// protobuf would allocate for it (inputs, outputs, parameters, dimensions, content
// types) before protobuf parses it, so a few bytes cannot cost megabytes; the tensors are
// then copied once, by that parse, and read in place (fp32_contents and fp64_contents
// too: they are little-endian floats already). The outputs are computed into pooled
// buffers that become the response's raw_output_contents without another copy: the
// response's other fields are serialized by protobuf and the buffers appended as field 6.
// Small inferences run on the gRPC thread, larger ones on the compute pool, as Compute's.
//
// ServerLive, ServerReady and ModelReady are open without a token, as the gRPC health
// service is (probes use them), and are not logged; ServerMetadata, ModelMetadata and
// ModelInfer need the token and end in one log line and metrics record each.
#ifndef ACTSERVE_SERVER_INFERENCE_GRPC_SERVICE_H_
#define ACTSERVE_SERVER_INFERENCE_GRPC_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/arena.h"
#include "inference/open_inference_grpc.grpc.pb.h"
#include "server/buffer_pool.h"
#include "server/call_gate.h"
#include "server/inference/model.h"
#include "server/server_options.h"
#include "src/engine.h"
#include "src/thread_pool.h"

namespace actserve {
namespace server {
namespace inference {

// Bounds on a ModelInferRequest beyond its size, checked on the wire before protobuf
// parses it: no model has more inputs or outputs, and more would only cost memory.
inline constexpr int kMaxInferTensors = 3;
inline constexpr int kMaxInferParameters = 16;
// Fields the specification does not define (or of another wire type than it gives):
// protobuf keeps each as an object of its own, so a request may hold only a few.
inline constexpr int kMaxUnknownFields = 64;

// Scans a serialized ModelInferRequest without parsing it: InvalidArgument when it is
// malformed, holds more than kMaxInferTensors inputs, outputs or raw_input_contents or
// more than kMaxInferParameters parameters in one map, more than kMaxUnknownFields fields
// outside the specification, or typed contents other than fp32_contents and
// fp64_contents (the only ones of a datatype actserve computes);
// ResourceExhausted when a shape has more than `max_rank` entries (0: no limit).
absl::Status ScanModelInferRequest(const grpc::ByteBuffer& request, int max_rank);

// Thread-safe. Everything borrowed must outlive the service and every call it started.
class InferenceServiceImpl final
    : public ::inference::GRPCInferenceService::WithRawCallbackMethod_ModelInfer<
          ::inference::GRPCInferenceService::WithCallbackMethod_ServerLive<
              ::inference::GRPCInferenceService::WithCallbackMethod_ServerReady<
                  ::inference::GRPCInferenceService::WithCallbackMethod_ModelReady<
                      ::inference::GRPCInferenceService::WithCallbackMethod_ServerMetadata<
                          ::inference::GRPCInferenceService::WithCallbackMethod_ModelMetadata<
                              ::inference::GRPCInferenceService::Service>>>>>> {
 public:
  // `ready` answers ServerReady (false once the server drains).
  InferenceServiceImpl(const Engine* engine, ThreadPool* pool,
                       std::shared_ptr<BufferPool> buffers, const ServerOptions& options,
                       CallGate* gate, std::function<bool()> ready);

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* context,
                                       const ::inference::ServerLiveRequest* request,
                                       ::inference::ServerLiveResponse* response) override;
  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* context,
                                        const ::inference::ServerReadyRequest* request,
                                        ::inference::ServerReadyResponse* response) override;
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* context,
                                       const ::inference::ModelReadyRequest* request,
                                       ::inference::ModelReadyResponse* response) override;
  grpc::ServerUnaryReactor* ServerMetadata(
      grpc::CallbackServerContext* context, const ::inference::ServerMetadataRequest* request,
      ::inference::ServerMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelMetadata(
      grpc::CallbackServerContext* context, const ::inference::ModelMetadataRequest* request,
      ::inference::ModelMetadataResponse* response) override;
  // The request and response are serialized ModelInferRequest / ModelInferResponse.
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override;

  // --- For the reactor in grpc_service.cc; not part of the service's API. ---
  // One ModelInfer call's request, plan and buffers.
  struct Call {
    google::protobuf::Arena arena;
    ::inference::ModelInferRequest* request = nullptr;  // on `arena`
    InferRequest infer;                                 // views of `request`
    InferencePlan plan;                                 // views of `infer`
    std::vector<Buffer> buffers;  // one per plan.outputs entry
    // The request's bytes as protobuf holds them (its copy of the received message), and
    // the engine's own memory: charged to the pool's limit, as actserve.v1's tensors are.
    Reservation received;
    Reservation working;
    std::string response_head;    // the response without raw_output_contents
    std::optional<absl::Time> timeout_deadline;
  };
  // Parses, validates and plans `request`, and takes the output buffers.
  absl::StatusOr<std::unique_ptr<Call>> Prepare(const grpc::ByteBuffer& request,
                                                CallStats* stats);
  // Computes `call` and returns the serialized response.
  absl::StatusOr<grpc::ByteBuffer> Run(Call& call, const std::atomic<bool>* cancelled,
                                       CallStats* stats);
  bool ComputesInline(const Call& call) const;
  ThreadPool& pool() { return pool_; }
  CallGate& gate() { return gate_; }

 private:
  const Engine& engine_;
  ThreadPool& pool_;
  const std::shared_ptr<BufferPool> buffers_;
  const ServerOptions options_;
  CallGate& gate_;
  const std::function<bool()> ready_;
};

}  // namespace inference
}  // namespace server
}  // namespace actserve

#endif  // ACTSERVE_SERVER_INFERENCE_GRPC_SERVICE_H_
