// See activation_service.h.
#include "server/activation_service.h"

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
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

// A batch ready to compute: engine items viewing the request, and buffers viewing the
// response. Moved into a pool task when the batch is large.
struct PreparedBatch {
  std::vector<ComputeItem> items;
  std::vector<ItemBuffers> buffers;
  std::vector<int64_t> elements;  // per item, for the metrics
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
  batch.elements.reserve(items->size());
  for (const ResultSizes& size : *sizes) batch.elements.push_back(size.elements);
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
  ComputeReactor(ActivationServiceImpl* service, grpc::CallbackServerContext* context,
                 const v1::ComputeRequest* request, v1::ComputeResponse* response)
      : service_(*service), context_(*context), start_(absl::Now()) {
    if (absl::Status admitted = service_.AdmitCall(context_, /*counted=*/true);
        !admitted.ok()) {
      service_.RecordCall("Compute", context_, start_, stats_, admitted);
      Finish(ToGrpcStatus(admitted));
      return;
    }
    if (context_.deadline() <= std::chrono::system_clock::now()) {
      // Arrived too late to be of use: spend nothing on it.
      FinishCall(absl::DeadlineExceededError(
          "deadline exceeded before the computation started"));
      return;
    }
    service_.RunBatch(*request, response, &cancelled_, &stats_,
                      [this](absl::Status status) { FinishCall(std::move(status)); });
  }

  void OnCancel() override { cancelled_.store(true, std::memory_order_relaxed); }
  void OnDone() override { delete this; }

 private:
  void FinishCall(absl::Status status) {
    status = ActivationServiceImpl::ResolveCancellation(std::move(status), context_);
    service_.RecordCall("Compute", context_, start_, stats_, status);
    // Release before Finish: once the client sees the status, its slot is free again, so
    // a client that waits for one call before starting the next is never refused.
    service_.ReleaseSlot();
    Finish(ToGrpcStatus(status));  // `this` may be deleted from here on
  }

  ActivationServiceImpl& service_;
  const grpc::CallbackServerContext& context_;
  const absl::Time start_;
  CallStats stats_;
  std::atomic<bool> cancelled_{false};
};

// ComputeStream: read a request, compute, write its response, read the next. One batch
// at a time keeps responses in request order; the client may still pipeline its writes,
// which gRPC's flow control buffers.
class ComputeStreamReactor final
    : public grpc::ServerBidiReactor<v1::ComputeRequest, v1::ComputeResponse> {
 public:
  ComputeStreamReactor(ActivationServiceImpl* service, grpc::CallbackServerContext* context)
      : service_(*service), context_(*context), start_(absl::Now()) {
    if (absl::Status admitted = service_.AdmitCall(context_, /*counted=*/true);
        !admitted.ok()) {
      service_.RecordCall("ComputeStream", context_, start_, stats_, admitted);
      Finish(ToGrpcStatus(admitted));
      return;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The client closed its side (or the call is gone): the stream is complete.
      FinishCall(context_.IsCancelled()
                     ? absl::CancelledError("ComputeStream: the call was cancelled")
                     : absl::OkStatus());
      return;
    }
    service_.RunBatch(request_, &response_, &cancelled_, &stats_,
                      [this](absl::Status status) {
                        if (!status.ok()) {
                          FinishCall(std::move(status));
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
  void FinishCall(absl::Status status) {
    status = ActivationServiceImpl::ResolveCancellation(std::move(status), context_);
    service_.RecordCall("ComputeStream", context_, start_, stats_, status);
    service_.ReleaseSlot();  // before Finish, as in ComputeReactor
    Finish(ToGrpcStatus(status));
  }

  ActivationServiceImpl& service_;
  const grpc::CallbackServerContext& context_;
  const absl::Time start_;
  CallStats stats_;
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
                                             const ServerOptions& options,
                                             ServerMetrics* metrics,
                                             const TokenAuthenticator* authenticator)
    : engine_(*engine),
      pool_(*pool),
      options_(options),
      metrics_(*metrics),
      authenticator_(authenticator),
      list_response_(BuildListResponse(options, pool->threads())) {}

int ActivationServiceImpl::inflight() const {
  absl::MutexLock lock(&mu_);
  return inflight_;
}

void ActivationServiceImpl::StartDrain() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
}

bool ActivationServiceImpl::WaitUntilIdle(absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return inflight_ == 0; };
  return mu_.AwaitWithDeadline(absl::Condition(&idle), deadline);
}

absl::Status ActivationServiceImpl::AdmitCall(const grpc::CallbackServerContext& context,
                                              bool counted) {
  {
    absl::MutexLock lock(&mu_);
    if (draining_) {
      return absl::UnavailableError(
          "the server is shutting down; retry on another instance");
    }
  }
  if (authenticator_ != nullptr) {
    const auto& metadata = context.client_metadata();
    const auto found = metadata.find("authorization");
    absl::string_view value;
    if (found != metadata.end()) value = {found->second.data(), found->second.size()};
    absl::Status authorized =
        authenticator_->Authorize(found != metadata.end() ? &value : nullptr);
    if (!authorized.ok()) return authorized;
  }
  if (!counted) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  const int limit = options_.max_inflight;
  if (limit > 0 && inflight_ >= limit) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "too many calls in flight: ", limit, " (limit --max_inflight); retry later"));
  }
  ++inflight_;
  return absl::OkStatus();
}

void ActivationServiceImpl::ReleaseSlot() {
  absl::MutexLock lock(&mu_);
  --inflight_;
}

void ActivationServiceImpl::RunBatch(const v1::ComputeRequest& request,
                                     v1::ComputeResponse* response,
                                     const std::atomic<bool>* cancelled, CallStats* stats,
                                     std::function<void(absl::Status)> done) {
  ++stats->batches;
  stats->received_bytes += request.ByteSizeLong();
  absl::StatusOr<PreparedBatch> batch =
      Prepare(engine_, options_.max_message_bytes, request, response);
  if (!batch.ok()) {
    done(batch.status());
    return;
  }
  stats->items += static_cast<int64_t>(batch->items.size());
  for (int64_t elements : batch->elements) stats->elements += elements;

  // Runs on whichever thread computes: the outcome is accounted before `done`, which
  // may finish the call and free `stats` and `response`. Shared, because a pool that
  // refuses the task destroys its copy, and then `done` must still be called here.
  auto finish = std::make_shared<std::function<void(absl::Status)>>(std::move(done));
  auto compute = [this, cancelled, stats, response, finish](const PreparedBatch& prepared) {
    absl::Status status = engine_.Compute(prepared.items, prepared.buffers, cancelled);
    if (status.ok()) {
      stats->sent_bytes += response->ByteSizeLong();
      for (size_t i = 0; i < prepared.items.size(); ++i) {
        metrics_.RecordElements(prepared.items[i].activation.kind,
                                prepared.items[i].input.dtype, prepared.elements[i]);
      }
    }
    (*finish)(std::move(status));
  };
  if (InputBytes(batch->items) < options_.inline_bytes) {
    compute(*batch);
    return;
  }
  if (!pool_.TrySchedule([compute, batch = std::move(*batch)]() { compute(batch); })) {
    response->Clear();
    (*finish)(absl::ResourceExhaustedError(
        absl::StrCat("server overloaded: ", pool_.queued(),
                     " batches already wait for a compute thread; retry later")));
  }
}

absl::Status ActivationServiceImpl::ResolveCancellation(
    absl::Status status, const grpc::CallbackServerContext& context) {
  if (status.code() != absl::StatusCode::kCancelled) return status;
  if (context.deadline() <= std::chrono::system_clock::now()) {
    return absl::DeadlineExceededError(
        "deadline exceeded: the computation was stopped and its partial results "
        "discarded; allow a longer deadline or send smaller batches");
  }
  return absl::CancelledError("cancelled: the computation was stopped");
}

void ActivationServiceImpl::RecordCall(absl::string_view method,
                                       const grpc::CallbackServerContext& context,
                                       absl::Time start, const CallStats& stats,
                                       const absl::Status& status) {
  const absl::Duration latency = absl::Now() - start;
  metrics_.RecordCall(method, status.code(), latency, stats.received_bytes,
                      stats.sent_bytes);
  const LogLevel level = status.ok() ? LogLevel::kInfo : LogLevel::kWarning;
  if (!LogEnabled(level)) return;
  // Never the metadata (it carries the token) and never tensor data; the status message
  // may quote the client's input, which Log bounds and keeps on one line.
  std::string line = absl::StrFormat(
      "%s %s batches=%d items=%d elements=%d in=%dB out=%dB latency=%.3fms peer=%s",
      method, absl::StatusCodeToString(status.code()), stats.batches, stats.items,
      stats.elements, stats.received_bytes, stats.sent_bytes,
      absl::ToDoubleMilliseconds(latency), context.peer());
  if (!status.ok()) absl::StrAppend(&line, ": ", status.message());
  Log(level, line);
}

grpc::ServerUnaryReactor* ActivationServiceImpl::Compute(
    grpc::CallbackServerContext* context, const v1::ComputeRequest* request,
    v1::ComputeResponse* response) {
  return new ComputeReactor(this, context, request, response);
}

grpc::ServerBidiReactor<v1::ComputeRequest, v1::ComputeResponse>*
ActivationServiceImpl::ComputeStream(grpc::CallbackServerContext* context) {
  return new ComputeStreamReactor(this, context);
}

grpc::ServerUnaryReactor* ActivationServiceImpl::ListActivations(
    grpc::CallbackServerContext* context, const v1::ListActivationsRequest* request,
    v1::ListActivationsResponse* response) {
  const absl::Time start = absl::Now();
  CallStats stats;
  stats.received_bytes = request->ByteSizeLong();
  absl::Status status = AdmitCall(*context, /*counted=*/false);
  if (status.ok()) {
    *response = list_response_;
    stats.sent_bytes = response->ByteSizeLong();
  }
  RecordCall("ListActivations", *context, start, stats, status);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace server
}  // namespace actserve
