// See activation_service.h.
#include "server/activation_service.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "proto/convert.h"
#include "server/logging.h"
#include "server/status_util.h"
#include "src/catalogue.h"
#include "src/dtype.h"

#ifndef ACTSERVE_VERSION
#error "ACTSERVE_VERSION must be defined by the build (the CMake project version)"
#endif

namespace actserve {
namespace server {
namespace {

// The compute backend name reported by ListActivations. The core does not expose which
// SIMD target its kernels dispatched to, so the server reports the portable build.
constexpr char kSimdTarget[] = "portable";

// Input bytes a batch reads, which decides whether it is worth a trip to the pool.
size_t InputBytes(const std::vector<ComputeItem>& items) {
  size_t bytes = 0;
  for (const ComputeItem& item : items) {
    bytes += item.input.data.size();
    if (item.grad_output.has_value()) bytes += item.grad_output->data.size();
  }
  return bytes;
}

// Sizes `tensor` to hold a result: the header is set and `data` resized (zero-filled by
// std::string; the engine overwrites every byte). Returns the span the engine writes.
absl::Span<char> PrepareResultTensor(DType dtype, absl::Span<const int64_t> shape,
                                     size_t bytes, v1::Tensor* tensor) {
  wire::SetTensorHeader(dtype, shape, tensor);
  std::string* data = tensor->mutable_data();
  data->resize(bytes);
  return absl::MakeSpan(data->data(), data->size());
}

absl::Status ResponseTooLarge(uint64_t bytes, int64_t limit) {
  return absl::ResourceExhaustedError(
      absl::StrCat("response would be ", bytes, " bytes, over the ", limit,
                   "-byte message limit (--max_message_bytes); send fewer or smaller "
                   "items per request, or use ComputeStream"));
}

void LogCallError(absl::string_view method, const absl::Status& status) {
  // Bad input is the client's problem: debug. Anything else deserves attention.
  const LogLevel level = (status.code() == absl::StatusCode::kInvalidArgument ||
                          status.code() == absl::StatusCode::kResourceExhausted ||
                          status.code() == absl::StatusCode::kCancelled)
                             ? LogLevel::kDebug
                             : LogLevel::kWarning;
  if (!LogEnabled(level)) return;
  Log(level, absl::StrCat(method, " failed: ", status.ToString()));
}

// A batch ready to compute: engine items viewing the request, and buffers viewing the
// response. Moved into a pool task when the batch is large.
struct PreparedBatch {
  std::vector<ComputeItem> items;
  std::vector<ItemBuffers> buffers;
};

// Converts and validates `request`, and sizes `response` for its results.
absl::StatusOr<PreparedBatch> Prepare(const Engine& engine, int64_t max_message_bytes,
                                      const v1::ComputeRequest& request,
                                      v1::ComputeResponse* response) {
  absl::StatusOr<std::vector<ComputeItem>> items = wire::ItemsFromProto(request);
  if (!items.ok()) return items.status();
  absl::StatusOr<std::vector<ResultSizes>> sizes = engine.Plan(*items);
  if (!sizes.ok()) return sizes.status();

  // Refuse an oversized response before allocating it; gRPC would refuse to send it
  // anyway, after the work, with a message that does not say which limit or why.
  if (max_message_bytes > 0) {
    uint64_t result_bytes = 0;
    for (const ResultSizes& size : *sizes) {
      result_bytes += size.output_bytes + size.grad_input_bytes + size.grad_weight_bytes;
    }
    if (result_bytes > static_cast<uint64_t>(max_message_bytes)) {
      return ResponseTooLarge(result_bytes, max_message_bytes);
    }
  }

  PreparedBatch batch;
  batch.buffers.resize(items->size());
  response->Clear();
  response->mutable_results()->Reserve(static_cast<int>(items->size()));
  static constexpr int64_t kSingleWeightShape[] = {1};
  for (size_t i = 0; i < items->size(); ++i) {
    const ComputeItem& item = (*items)[i];
    const ResultSizes& size = (*sizes)[i];
    ItemBuffers& buffers = batch.buffers[i];
    v1::ComputeResult* result = response->add_results();
    if (ComputesOutput(item.mode)) {
      buffers.output = PrepareResultTensor(item.input.dtype, item.input.shape,
                                           size.output_bytes, result->mutable_output());
    }
    if (ComputesGradient(item.mode)) {
      buffers.grad_input =
          PrepareResultTensor(item.input.dtype, item.input.shape, size.grad_input_bytes,
                              result->mutable_grad_input());
      if (item.activation.kind == ActivationKind::kPrelu) {
        // The weight's shape; the default weight is one value, so [1].
        const absl::Span<const int64_t> weight_shape =
            item.prelu_weight.has_value() ? item.prelu_weight->shape
                                          : absl::MakeConstSpan(kSingleWeightShape);
        buffers.grad_weight =
            PrepareResultTensor(item.input.dtype, weight_shape, size.grad_weight_bytes,
                                result->mutable_grad_weight());
      }
    }
  }
  // The exact encoded size, headers included, now that every field is in place.
  if (max_message_bytes > 0) {
    const uint64_t encoded = response->ByteSizeLong();
    if (encoded > static_cast<uint64_t>(max_message_bytes)) {
      response->Clear();
      return ResponseTooLarge(encoded, max_message_bytes);
    }
  }
  batch.items = std::move(*items);
  return batch;
}

// Compute: one batch; the reactor finishes itself, from a worker for large batches.
class ComputeReactor final : public grpc::ServerUnaryReactor {
 public:
  ComputeReactor(ActivationServiceImpl* service, const v1::ComputeRequest* request,
                 v1::ComputeResponse* response)
      : service_(*service) {
    if (absl::Status admitted = service_.AdmitCall(); !admitted.ok()) {
      LogCallError("Compute", admitted);
      Finish(ToGrpcStatus(admitted));
      return;
    }
    service_.RunBatch(*request, response, &cancelled_,
                      [this](absl::Status status) { FinishCall(status); });
  }

  void OnCancel() override { cancelled_.store(true, std::memory_order_relaxed); }
  void OnDone() override { delete this; }

 private:
  void FinishCall(const absl::Status& status) {
    if (!status.ok()) LogCallError("Compute", status);
    // Release before Finish: once the client sees the status, its slot is free again, so
    // a client that waits for one call before starting the next is never refused.
    service_.ReleaseSlot();
    Finish(ToGrpcStatus(status));  // `this` may be deleted from here on
  }

  ActivationServiceImpl& service_;
  std::atomic<bool> cancelled_{false};
};

// ComputeStream: read a request, compute, write its response, read the next. One batch
// at a time keeps responses in request order; the client may still pipeline its writes,
// which gRPC's flow control buffers.
class ComputeStreamReactor final
    : public grpc::ServerBidiReactor<v1::ComputeRequest, v1::ComputeResponse> {
 public:
  explicit ComputeStreamReactor(ActivationServiceImpl* service) : service_(*service) {
    if (absl::Status admitted = service_.AdmitCall(); !admitted.ok()) {
      LogCallError("ComputeStream", admitted);
      Finish(ToGrpcStatus(admitted));
      return;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The client closed its side (or the call is gone): the stream is complete.
      FinishCall(absl::OkStatus());
      return;
    }
    service_.RunBatch(request_, &response_, &cancelled_, [this](absl::Status status) {
      if (!status.ok()) {
        FinishCall(status);
        return;
      }
      StartWrite(&response_);
    });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      FinishCall(absl::CancelledError("ComputeStream: a response could not be sent"));
      return;
    }
    // Clear keeps the strings' capacity, so the next batch of the same size reuses it.
    request_.Clear();
    response_.Clear();
    StartRead(&request_);
  }

  void OnCancel() override { cancelled_.store(true, std::memory_order_relaxed); }
  void OnDone() override { delete this; }

 private:
  void FinishCall(const absl::Status& status) {
    if (!status.ok()) LogCallError("ComputeStream", status);
    service_.ReleaseSlot();  // before Finish, as in ComputeReactor
    Finish(ToGrpcStatus(status));
  }

  ActivationServiceImpl& service_;
  v1::ComputeRequest request_;
  v1::ComputeResponse response_;
  std::atomic<bool> cancelled_{false};
};

v1::ListActivationsResponse BuildListResponse(const ServerOptions& options, int threads) {
  v1::ListActivationsResponse response;
  for (const ActivationInfo& info : Catalogue()) {
    wire::ActivationInfoToProto(info, response.add_activations());
  }
  v1::ServerInfo* server = response.mutable_server();
  server->set_version(ACTSERVE_VERSION);
  for (DType dtype : AllDTypes()) server->add_dtypes(wire::DTypeToProto(dtype));
  server->set_simd_target(kSimdTarget);
  server->set_threads(threads);
  v1::ServerLimits* limits = server->mutable_limits();
  limits->set_max_message_bytes(options.max_message_bytes);
  limits->set_max_elements(options.max_elements);
  limits->set_max_inflight(options.max_inflight);
  return response;
}

}  // namespace

ActivationServiceImpl::ActivationServiceImpl(const Engine* engine, ThreadPool* pool,
                                             const ServerOptions& options)
    : engine_(*engine),
      pool_(*pool),
      options_(options),
      list_response_(BuildListResponse(options, pool->threads())) {}

absl::Status ActivationServiceImpl::AdmitCall() {
  const int limit = options_.max_inflight;
  const int before = inflight_.fetch_add(1, std::memory_order_relaxed);
  if (limit > 0 && before >= limit) {
    inflight_.fetch_sub(1, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(absl::StrCat(
        "too many calls in flight: ", limit, " (limit --max_inflight); retry later"));
  }
  return absl::OkStatus();
}

void ActivationServiceImpl::ReleaseSlot() {
  inflight_.fetch_sub(1, std::memory_order_relaxed);
}

void ActivationServiceImpl::RunBatch(const v1::ComputeRequest& request,
                                     v1::ComputeResponse* response,
                                     const std::atomic<bool>* cancelled,
                                     std::function<void(absl::Status)> done) {
  absl::StatusOr<PreparedBatch> batch =
      Prepare(engine_, options_.max_message_bytes, request, response);
  if (!batch.ok()) {
    done(batch.status());
    return;
  }
  if (InputBytes(batch->items) < options_.inline_bytes) {
    done(engine_.Compute(batch->items, batch->buffers, cancelled));
    return;
  }
  const Engine& engine = engine_;
  auto task = [&engine, batch = std::move(*batch), cancelled, done]() {
    done(engine.Compute(batch.items, batch.buffers, cancelled));
  };
  if (!pool_.TrySchedule(std::move(task))) {
    response->Clear();
    done(absl::ResourceExhaustedError(
        absl::StrCat("server overloaded: ", pool_.queued(),
                     " batches already wait for a compute thread; retry later")));
  }
}

grpc::ServerUnaryReactor* ActivationServiceImpl::Compute(
    grpc::CallbackServerContext* /*context*/, const v1::ComputeRequest* request,
    v1::ComputeResponse* response) {
  return new ComputeReactor(this, request, response);
}

grpc::ServerBidiReactor<v1::ComputeRequest, v1::ComputeResponse>*
ActivationServiceImpl::ComputeStream(grpc::CallbackServerContext* /*context*/) {
  return new ComputeStreamReactor(this);
}

grpc::ServerUnaryReactor* ActivationServiceImpl::ListActivations(
    grpc::CallbackServerContext* context, const v1::ListActivationsRequest* /*request*/,
    v1::ListActivationsResponse* response) {
  *response = list_response_;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace server
}  // namespace actserve
