// See activation_service.h.
#include "server/activation_service.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <new>
#include <optional>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/arena.h"
#include "proto/convert.h"
#include "proto/grpc_status.h"
#include "proto/tensor_wire.h"
#include "server/logging.h"
#include "src/catalogue.h"
#include "src/dtype.h"
#include "src/kernels/activation_kernels.h"

#ifndef ACTSERVE_VERSION
#error "ACTSERVE_VERSION must be defined by the build (the CMake project version)"
#endif

namespace actserve {
namespace server {
namespace {

// `fn()`, or ResourceExhausted when it runs out of memory: a request that the limits let
// through but the system cannot hold fails alone instead of ending the process.
template <typename Fn>
absl::Status OutOfMemoryAsStatus(Fn fn) {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        "the server ran out of memory for this request; retry later or send smaller "
        "requests");
  }
}

// What an item costs beyond its bytes (parsing, validation, buffers, its result's
// header), counted as this many bytes of input when deciding between inline and a
// worker: with the default inline_bytes, a batch of more than 256 items goes to a worker,
// where a cancel or a deadline stops it between items, however few bytes it has.
constexpr size_t kItemCostBytes = 1024;

absl::Status ResponseTooLarge(uint64_t bytes, int64_t limit) {
  return absl::ResourceExhaustedError(
      absl::StrCat("response would be ", bytes, " bytes, over the ", limit,
                   "-byte message limit (--max_message_bytes); send fewer or smaller "
                   "items per request, or use ComputeStream"));
}

// One item's memory: the request's tensor data and the result buffers. A result computed
// in place takes over the input's (or grad_output's) buffer, whose address stays the
// same, so the engine's views of the input remain valid.
struct ItemMemory {
  Buffer input;
  Buffer grad_output;
  Buffer output;
  Buffer grad_input;
  Buffer grad_weight;
  std::vector<int64_t> grad_weight_shape;
};

// Memory for a batch's small tensors, carved out of a few blocks from the pool instead
// of a malloc, a charge against the memory limit and a free per tensor: a batch of many
// small items spent more on those than on computing them. Only for tensors the encoder
// copies into the response (ResultSlice), so that no slice outlives the batch.
class SmallTensorArena {
 public:
  static constexpr size_t kMaxTensorBytes = wire::kInlineDataBytes;

  // `size` (at most kMaxTensorBytes) bytes, valid while the arena lives, 64-byte aligned
  // within their block.
  absl::StatusOr<Buffer> Allocate(BufferPool& pool, size_t size) {
    const size_t rounded = (size + kAlignment - 1) / kAlignment * kAlignment;
    if (blocks_.empty() || used_ + rounded > blocks_.back().size()) {
      // A small first block: most batches are one item.
      absl::StatusOr<Buffer> block = pool.Acquire(blocks_.empty() ? kFirstBlockBytes : kBlockBytes);
      if (!block.ok()) return block.status();
      blocks_.push_back(*std::move(block));
      used_ = 0;
    }
    char* data = blocks_.back().data() + used_;
    used_ += rounded;
    return Buffer::Borrowed(data, size);
  }

 private:
  static constexpr size_t kAlignment = 64;
  static constexpr size_t kFirstBlockBytes = 2 * kMaxTensorBytes;
  static constexpr size_t kBlockBytes = size_t{64} << 10;
  static_assert(kFirstBlockBytes >= kMaxTensorBytes && kBlockBytes >= kMaxTensorBytes);

  std::vector<Buffer> blocks_;
  size_t used_ = 0;  // bytes of the last block handed out
};

}  // namespace

// A batch from receipt to response. Never moved once parsed: `items` view `header` and
// the buffers.
struct ActivationServiceImpl::PreparedBatch {
  // The request without its tensor data, on an arena: a batch of many items builds
  // several messages per item, which the arena allocates in a few blocks and frees at
  // once instead of one malloc and free each.
  google::protobuf::Arena arena;
  v1::ComputeRequest& header =
      *google::protobuf::Arena::CreateMessage<v1::ComputeRequest>(&arena);
  SmallTensorArena small_tensors;  // declared before `memory`, whose views it outlives
  // Inlined for one item, the common batch: no allocation per vector and call.
  absl::InlinedVector<ItemMemory, 1> memory;
  std::vector<ComputeItem> items;
  absl::InlinedVector<ItemBuffers, 1> buffers;
  absl::InlinedVector<int64_t, 1> elements;  // per item, for the metrics
  size_t working_bytes = 0;  // the engine's own scratch, summed over items (ResultSizes)
  Reservation working_memory;  // working_bytes, counted against the tensor memory limit
};

namespace {

using PreparedBatch = ActivationServiceImpl::PreparedBatch;
using CallKind = ActivationServiceImpl::CallKind;

// Parses `request` into `batch`, validates it and gives it result buffers.
absl::Status Prepare(const Engine& engine, const ServerOptions& options, BufferPool& pool,
                     grpc::ByteBuffer& request, PreparedBatch& batch) {
  const int64_t max_message_bytes = options.max_message_bytes;
  auto acquire = [&](size_t size) -> absl::StatusOr<Buffer> {
    if (size > 0 && size <= SmallTensorArena::kMaxTensorBytes) {
      return batch.small_tensors.Allocate(pool, size);
    }
    return pool.Acquire(size);
  };
  absl::Status parsed = wire::ParseComputeRequest(
      &request, &batch.header,
      [&](int index, wire::TensorField field, size_t size) -> absl::StatusOr<char*> {
        if (batch.memory.size() <= static_cast<size_t>(index)) batch.memory.resize(index + 1);
        Buffer& buffer = field == wire::TensorField::kInput ? batch.memory[index].input
                                                            : batch.memory[index].grad_output;
        absl::StatusOr<Buffer> acquired = acquire(size);
        if (!acquired.ok()) return acquired.status();
        buffer = *std::move(acquired);
        return buffer.data();
      },
      wire::ParseLimits{options.max_items, options.max_rank});
  if (!parsed.ok()) return parsed;
  batch.memory.resize(batch.header.items_size());
  absl::StatusOr<std::vector<ComputeItem>> items = wire::ItemsFromProto(batch.header);
  if (!items.ok()) return items.status();
  for (size_t i = 0; i < items->size(); ++i) {
    ComputeItem& item = (*items)[i];
    item.input.data = batch.memory[i].input.span();
    if (item.grad_output.has_value()) item.grad_output->data = batch.memory[i].grad_output.span();
  }
  absl::StatusOr<std::vector<ResultSizes>> sizes = engine.Plan(*items);
  if (!sizes.ok()) return sizes.status();

  // Refuse an oversized response before allocating it; gRPC would refuse to send it
  // anyway, after the work, with a message that does not say which limit or why. The
  // size is exact: the encoder writes exactly these headers.
  static constexpr int64_t kSingleWeightShape[] = {1};
  std::vector<wire::ResultSizeInfo> result_sizes(items->size());
  for (size_t i = 0; i < items->size(); ++i) {
    const ComputeItem& item = (*items)[i];
    const ResultSizes& size = (*sizes)[i];
    const v1::DType dtype = wire::DTypeToProto(item.input.dtype);
    wire::ResultSizeInfo& info = result_sizes[i];
    if (ComputesOutput(item.mode)) info.output = {{dtype, item.input.shape, size.output_bytes}};
    if (ComputesGradient(item.mode)) {
      info.grad_input = {{dtype, item.input.shape, size.grad_input_bytes}};
      if (item.activation.kind == ActivationKind::kPrelu) {
        // The weight's shape; the default weight is one value, so [1].
        const absl::Span<const int64_t> weight_shape =
            item.prelu_weight.has_value() ? item.prelu_weight->shape
                                          : absl::MakeConstSpan(kSingleWeightShape);
        batch.memory[i].grad_weight_shape.assign(weight_shape.begin(), weight_shape.end());
        info.grad_weight = {{dtype, batch.memory[i].grad_weight_shape, size.grad_weight_bytes}};
      }
    }
  }
  if (max_message_bytes > 0) {
    const uint64_t encoded = wire::EncodedResponseSize(result_sizes);
    if (encoded > static_cast<uint64_t>(max_message_bytes)) {
      return ResponseTooLarge(encoded, max_message_bytes);
    }
  }

  // The engine's own scratch is charged like the result buffers, and first: a request
  // that the tensor memory limit cannot hold is refused before any result memory is taken.
  for (const ResultSizes& size : *sizes) batch.working_bytes += size.working_bytes;
  absl::StatusOr<Reservation> working_memory = pool.Reserve(batch.working_bytes);
  if (!working_memory.ok()) return working_memory.status();
  batch.working_memory = *std::move(working_memory);

  batch.buffers.resize(items->size());
  batch.elements.reserve(items->size());
  for (size_t i = 0; i < items->size(); ++i) {
    const ComputeItem& item = (*items)[i];
    const ResultSizes& size = (*sizes)[i];
    ItemMemory& memory = batch.memory[i];
    ItemBuffers& buffers = batch.buffers[i];
    batch.elements.push_back(size.elements);
    // In place wherever the engine allows it (a result may alias its own item's input or
    // grad_output, never another result): no new memory for most results.
    if (ComputesOutput(item.mode)) {
      memory.output = std::move(memory.input);
      buffers.output = memory.output.span();
    }
    if (ComputesGradient(item.mode)) {
      if (item.grad_output.has_value() && memory.grad_output.size() == size.grad_input_bytes) {
        memory.grad_input = std::move(memory.grad_output);
      } else if (!ComputesOutput(item.mode)) {
        memory.grad_input = std::move(memory.input);
      } else {
        absl::StatusOr<Buffer> grad_input = acquire(size.grad_input_bytes);
        if (!grad_input.ok()) return grad_input.status();
        memory.grad_input = *std::move(grad_input);
      }
      buffers.grad_input = memory.grad_input.span();
      absl::StatusOr<Buffer> grad_weight = acquire(size.grad_weight_bytes);
      if (!grad_weight.ok()) return grad_weight.status();
      memory.grad_weight = *std::move(grad_weight);
      buffers.grad_weight = memory.grad_weight.span();
    }
  }
  batch.items = std::move(*items);
  return absl::OkStatus();
}

// A result's bytes for the encoder. Small ones are copied into the message before the
// encoder returns (see wire::TensorToEncode), so they are lent as a static slice and stay
// with the batch: no slice owner, reference count or release callback per item.
grpc::Slice ResultSlice(Buffer& buffer) {
  if (buffer.size() <= wire::kInlineDataBytes) {
    return grpc::Slice(buffer.data(), buffer.size(), grpc::Slice::STATIC_SLICE);
  }
  return std::move(buffer).ToSlice();
}

// The response for a computed `batch`; its result buffers become the response's slices.
grpc::ByteBuffer EncodeResults(PreparedBatch& batch) {
  std::vector<wire::ResultToEncode> results(batch.items.size());
  for (size_t i = 0; i < batch.items.size(); ++i) {
    const ComputeItem& item = batch.items[i];
    ItemMemory& memory = batch.memory[i];
    const v1::DType dtype = wire::DTypeToProto(item.input.dtype);
    if (ComputesOutput(item.mode)) {
      results[i].output = {dtype, item.input.shape, ResultSlice(memory.output)};
    }
    if (ComputesGradient(item.mode)) {
      results[i].grad_input = {dtype, item.input.shape, ResultSlice(memory.grad_input)};
      if (item.activation.kind == ActivationKind::kPrelu) {
        results[i].grad_weight = {dtype, memory.grad_weight_shape,
                                  ResultSlice(memory.grad_weight)};
      }
    }
  }
  return wire::EncodeComputeResponse(std::move(results));
}

// Compute for a batch computed on a worker: the call is finished from there, and a
// client's cancel reaches the engine through OnCancel. (Everything else is finished in
// the handler, through gRPC's default reactor; see ActivationServiceImpl::Compute.)
class PooledComputeReactor final : public grpc::ServerUnaryReactor {
 public:
  PooledComputeReactor(ActivationServiceImpl* service, grpc::CallbackServerContext* context,
                       absl::Time start, const CallStats& stats,
                       std::shared_ptr<PreparedBatch> batch, grpc::ByteBuffer* response)
      : service_(*service),
        context_(*context),
        start_(start),
        response_(*response),
        stats_(stats) {
    service_.ScheduleBatch(std::move(batch), &cancelled_, &stats_,
                           [this](absl::StatusOr<grpc::ByteBuffer> response) {
                             if (!response.ok()) {
                               FinishCall(response.status());
                               return;
                             }
                             response_ = *std::move(response);
                             FinishCall(absl::OkStatus());
                           });
  }

  void OnCancel() override { cancelled_.store(true, std::memory_order_relaxed); }
  void OnDone() override { delete this; }

 private:
  void FinishCall(absl::Status status) {
    status = ActivationServiceImpl::ResolveCancellation(std::move(status), context_);
    service_.RecordCall("Compute", context_, start_, stats_, status);
    // Release before Finish: once the client sees the status, its slot is free again, so
    // a client that waits for one call before starting the next is never refused.
    service_.ReleaseSlot(CallKind::kUnary);
    Finish(wire::ToGrpcStatus(status));  // `this` may be deleted from here on
  }

  ActivationServiceImpl& service_;
  const grpc::CallbackServerContext& context_;
  const absl::Time start_;
  grpc::ByteBuffer& response_;
  CallStats stats_;
  std::atomic<bool> cancelled_{false};
};

// ComputeStream, pipelined (see activation_service.h). Every decision is taken under
// `mu_` by Advance, and the gRPC operations it decides on are started after the lock is
// dropped, since a reaction may run on another thread at once.
class ComputeStreamReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  ComputeStreamReactor(ActivationServiceImpl* service, grpc::CallbackServerContext* context)
      : service_(*service),
        context_(*context),
        start_(absl::Now()),
        window_(std::max(1, service->options().stream_window)) {
    if (absl::Status admitted = service_.AdmitCall(context_, CallKind::kStream);
        !admitted.ok()) {
      service_.RecordCall("ComputeStream", context_, start_, stats_, admitted);
      Finish(wire::ToGrpcStatus(admitted));
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      admitted_ = true;
    }
    Advance();
  }

  void OnReadDone(bool ok) override {
    std::shared_ptr<Slot> slot;
    grpc::ByteBuffer request;
    {
      absl::MutexLock lock(&mu_);
      reading_ = false;
      if (finished_) return;
      if (!ok) {
        // The client closed its side (or the call is gone): no more batches.
        reads_done_ = true;
        --held_;
      } else {
        slot = std::make_shared<Slot>();
        slots_.push_back(slot);
        ++computing_;
        request = std::move(read_buffer_);
      }
    }
    if (slot != nullptr) {
      service_.RunBatch(std::move(request), &cancelled_, &slot->stats,
                        [this, slot](absl::StatusOr<grpc::ByteBuffer> response) {
                          // On a compute worker, outside any gRPC reaction: once
                          // computing_ drops, another thread may finish the call and
                          // gRPC delete this reactor, so the update and the decisions
                          // that follow it share one critical section.
                          Advance([&] {
                            --computing_;
                            slot->computed = true;
                            if (response.ok()) {
                              slot->response = *std::move(response);
                            } else if (failure_.ok()) {
                              failure_ = response.status();
                            }
                          });
                        });
    }
    Advance();
  }

  void OnWriteDone(bool ok) override {
    Advance([&] {
      writing_ = false;
      MergeStats(slots_.front()->stats);
      // The sent slices go back to the buffer pool once gRPC drops them.
      slots_.pop_front();
      --held_;
      if (!ok && failure_.ok()) {
        failure_ = absl::CancelledError("ComputeStream: a response could not be sent");
      }
    });
  }

  void OnCancel() override { cancelled_.store(true, std::memory_order_relaxed); }
  void OnDone() override { delete this; }

 private:
  struct Slot {
    CallStats stats;
    bool computed = false;
    grpc::ByteBuffer response;
  };

  // Starts whatever can start now: the next read while the window has room, the next
  // response in order once it is computed, and Finish once everything is done (or, after
  // an error, once no computation or write still refers to this reactor).
  //
  // `update` (state changes of the caller) runs under the same lock, first.
  //
  // An operation is decided under the lock and started after it; until it has been
  // started (`starting_`), Finish must wait: a StartRead or StartWrite after Finish is
  // undefined, and after OnDone it would touch a deleted reactor. So whoever starts
  // operations looks again afterwards, and that look may finish the call. After a
  // Decide that starts nothing and finishes nothing, the caller must not touch the
  // reactor again: another thread may finish the call from then on.
  void Advance(absl::FunctionRef<void()> update = [] {}) {
    Step step = Decide(update);
    while (step.write != nullptr || step.start_read) {
      if (step.write != nullptr) StartWrite(step.write);
      if (step.start_read) StartRead(&read_buffer_);
      step = Decide([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { --starting_; });
    }
    if (step.finish.has_value()) FinishCall(*std::move(step.finish));
  }

  struct Step {
    bool start_read = false;
    grpc::ByteBuffer* write = nullptr;
    std::optional<absl::Status> finish;
  };

  // `update`, then Advance's decisions, under the lock; counts the operations it decides
  // to start.
  Step Decide(absl::FunctionRef<void()> update) {
    Step step;
    {
      absl::MutexLock lock(&mu_);
      update();
      if (finished_ || !admitted_) return step;
      if (!failure_.ok()) {
        // A read may stay pending (the client may be waiting for a response that will
        // not come); Finish completes it. One decided but not yet started may not.
        if (computing_ == 0 && !writing_ && starting_ == 0) step.finish = failure_;
      } else {
        if (!writing_ && !slots_.empty() && slots_.front()->computed) {
          writing_ = true;
          step.write = &slots_.front()->response;
        }
        if (!reading_ && !reads_done_ && held_ < window_) {
          reading_ = true;
          ++held_;
          step.start_read = true;
        }
        if (reads_done_ && !reading_ && slots_.empty() && computing_ == 0 && !writing_ &&
            starting_ == 0) {
          step.finish = context_.IsCancelled()
                            ? absl::CancelledError("ComputeStream: the call was cancelled")
                            : absl::OkStatus();
        }
      }
      if (step.finish.has_value()) {
        finished_ = true;
        for (const std::shared_ptr<Slot>& slot : slots_) MergeStats(slot->stats);
      }
      if (step.write != nullptr || step.start_read) ++starting_;
    }
    return step;
  }

  void MergeStats(const CallStats& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    stats_.batches += batch.batches;
    stats_.items += batch.items;
    stats_.elements += batch.elements;
    stats_.received_bytes += batch.received_bytes;
    stats_.sent_bytes += batch.sent_bytes;
  }

  void FinishCall(absl::Status status) {
    status = ActivationServiceImpl::ResolveCancellation(std::move(status), context_);
    {
      absl::MutexLock lock(&mu_);  // finished_: nothing else touches stats_ any more
      service_.RecordCall("ComputeStream", context_, start_, stats_, status);
    }
    service_.ReleaseSlot(CallKind::kStream);  // before Finish, as in PooledComputeReactor
    Finish(wire::ToGrpcStatus(status));
  }

  ActivationServiceImpl& service_;
  const grpc::CallbackServerContext& context_;
  const absl::Time start_;
  const int window_;
  std::atomic<bool> cancelled_{false};
  grpc::ByteBuffer read_buffer_;  // the read in progress; only one at a time

  absl::Mutex mu_;
  bool admitted_ ABSL_GUARDED_BY(mu_) = false;
  CallStats stats_ ABSL_GUARDED_BY(mu_);
  // Batches received and not yet sent, in request order.
  std::deque<std::shared_ptr<Slot>> slots_ ABSL_GUARDED_BY(mu_);
  int held_ ABSL_GUARDED_BY(mu_) = 0;  // slots_ plus a read in progress
  int computing_ ABSL_GUARDED_BY(mu_) = 0;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  int starting_ ABSL_GUARDED_BY(mu_) = 0;  // Advance calls between deciding and starting
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
};

v1::ListActivationsResponse BuildListResponse(const ServerOptions& options, int threads) {
  v1::ListActivationsResponse response;
  for (const ActivationInfo& info : Catalogue()) {
    wire::ActivationInfoToProto(info, response.add_activations());
  }
  v1::ServerInfo* server = response.mutable_server();
  server->set_version(ACTSERVE_VERSION);
  for (DType dtype : AllDTypes()) server->add_dtypes(wire::DTypeToProto(dtype));
  server->set_simd_target(kernels::ActiveTargetName());  // e.g. "AVX3"
  server->set_threads(threads);
  v1::ServerLimits* limits = server->mutable_limits();
  limits->set_max_message_bytes(options.max_message_bytes);
  limits->set_max_elements(options.max_elements);
  limits->set_max_inflight(options.max_inflight);
  limits->set_max_items(options.max_items);
  limits->set_max_rank(options.max_rank);
  limits->set_max_streams(options.max_streams);
  limits->set_max_tensor_memory_bytes(options.max_tensor_memory_bytes);
  return response;
}

}  // namespace

ActivationServiceImpl::ActivationServiceImpl(const Engine* engine, ThreadPool* pool,
                                             const ServerOptions& options, CallGate* gate)
    : engine_(*engine),
      pool_(*pool),
      options_(options),
      gate_(*gate),
      list_response_(BuildListResponse(options, pool->threads())),
      buffers_(BufferPool::Create([&options] {
        BufferPoolOptions pool_options;
        pool_options.max_cached_bytes = options.buffer_cache_bytes;
        pool_options.max_live_bytes = static_cast<size_t>(options.max_tensor_memory_bytes);
        pool_options.fill_with_canary = options.fill_buffers_with_canary;
        return pool_options;
      }())) {}

absl::Status AdmitGrpcCall(CallGate& gate, const grpc::CallbackServerContext& context,
                           CallKind kind) {
  const auto& metadata = context.client_metadata();
  const auto found = metadata.find("authorization");
  if (found == metadata.end()) return gate.Admit(nullptr, kind);
  const absl::string_view value(found->second.data(), found->second.size());
  return gate.Admit(&value, kind);
}

absl::Status ActivationServiceImpl::AdmitCall(const grpc::CallbackServerContext& context,
                                              CallKind kind) {
  return AdmitGrpcCall(gate_, context, kind);
}

void ActivationServiceImpl::ReleaseSlot(CallKind kind) { gate_.Release(kind); }

absl::StatusOr<std::shared_ptr<PreparedBatch>> ActivationServiceImpl::PrepareBatch(
    grpc::ByteBuffer request, CallStats* stats) {
  ++stats->batches;
  stats->received_bytes += request.Length();
  // Shared, because a batch computed on a worker is owned by the task, and a pool that
  // refuses the task destroys its copy; the batch's views must not move.
  auto batch = std::make_shared<PreparedBatch>();
  absl::Status prepared = OutOfMemoryAsStatus(
      [&] { return Prepare(engine_, options_, *buffers_, request, *batch); });
  request.Clear();  // the received slices are no longer needed
  if (!prepared.ok()) return prepared;
  stats->items += static_cast<int64_t>(batch->items.size());
  for (int64_t elements : batch->elements) stats->elements += elements;
  return batch;
}

bool ActivationServiceImpl::ComputesInline(const PreparedBatch& batch) const {
  size_t cost = batch.working_bytes + batch.items.size() * kItemCostBytes;
  for (const ComputeItem& item : batch.items) {
    cost += item.input.data.size();
    if (item.grad_output.has_value()) cost += item.grad_output->data.size();
  }
  return cost < options_.inline_bytes;
}

absl::StatusOr<grpc::ByteBuffer> ActivationServiceImpl::ComputeBatch(
    PreparedBatch& batch, const std::atomic<bool>* cancelled, CallStats* stats) {
  absl::Status status =
      OutOfMemoryAsStatus([&] { return engine_.Compute(batch.items, batch.buffers, cancelled); });
  if (!status.ok()) return status;
  for (size_t i = 0; i < batch.items.size(); ++i) {
    gate_.metrics().RecordElements(batch.items[i].activation.kind, batch.items[i].input.dtype,
                            batch.elements[i]);
  }
  grpc::ByteBuffer response = EncodeResults(batch);
  stats->sent_bytes += response.Length();
  return response;
}

void ActivationServiceImpl::ScheduleBatch(
    std::shared_ptr<PreparedBatch> batch, const std::atomic<bool>* cancelled,
    CallStats* stats, std::function<void(absl::StatusOr<grpc::ByteBuffer>)> done) {
  // Shared: the task owns it, and a pool that refuses the task destroys its copy, after
  // which `done` is still needed here.
  auto finish =
      std::make_shared<std::function<void(absl::StatusOr<grpc::ByteBuffer>)>>(std::move(done));
  const bool scheduled = pool_.TrySchedule([this, batch, cancelled, stats, finish] {
    (*finish)(ComputeBatch(*batch, cancelled, stats));
  });
  if (!scheduled) {
    (*finish)(absl::ResourceExhaustedError(
        absl::StrCat("server overloaded: ", pool_.queued(),
                     " batches already wait for a compute thread; retry later")));
  }
}

void ActivationServiceImpl::RunBatch(
    grpc::ByteBuffer request, const std::atomic<bool>* cancelled, CallStats* stats,
    std::function<void(absl::StatusOr<grpc::ByteBuffer>)> done) {
  absl::StatusOr<std::shared_ptr<PreparedBatch>> batch = PrepareBatch(std::move(request), stats);
  if (!batch.ok()) {
    done(batch.status());
    return;
  }
  if (ComputesInline(**batch)) {
    done(ComputeBatch(**batch, cancelled, stats));
    return;
  }
  ScheduleBatch(*std::move(batch), cancelled, stats, std::move(done));
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
  gate_.Record(method, context.peer(), start, stats, status);
}

grpc::ServerUnaryReactor* ActivationServiceImpl::Compute(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  const absl::Time start = absl::Now();
  CallStats stats;
  absl::Status status = AdmitCall(*context, CallKind::kUnary);
  const bool admitted = status.ok();
  if (admitted && context->deadline() <= std::chrono::system_clock::now()) {
    // Arrived too late to be of use: spend nothing on it.
    status = absl::DeadlineExceededError("deadline exceeded before the computation started");
  } else if (admitted) {
    // Copying a ByteBuffer takes references to its slices, not their bytes.
    absl::StatusOr<std::shared_ptr<PreparedBatch>> batch = PrepareBatch(*request, &stats);
    if (batch.ok() && !ComputesInline(**batch)) {
      return new PooledComputeReactor(this, context, start, stats, *std::move(batch), response);
    }
    if (batch.ok()) {
      // Not cancellable: gRPC reports a cancel only after the handler has returned, and
      // a batch this small is done in microseconds.
      absl::StatusOr<grpc::ByteBuffer> computed =
          ComputeBatch(**batch, /*cancelled=*/nullptr, &stats);
      if (computed.ok()) {
        *response = *std::move(computed);
      } else {
        status = computed.status();
      }
    } else {
      status = batch.status();
    }
  }
  status = ResolveCancellation(std::move(status), *context);
  RecordCall("Compute", *context, start, stats, status);
  if (admitted) ReleaseSlot(CallKind::kUnary);  // before Finish, as in PooledComputeReactor
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(wire::ToGrpcStatus(status));
  return reactor;
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
ActivationServiceImpl::ComputeStream(grpc::CallbackServerContext* context) {
  return new ComputeStreamReactor(this, context);
}

grpc::ServerUnaryReactor* ActivationServiceImpl::ListActivations(
    grpc::CallbackServerContext* context, const v1::ListActivationsRequest* request,
    v1::ListActivationsResponse* response) {
  const absl::Time start = absl::Now();
  CallStats stats;
  stats.received_bytes = request->ByteSizeLong();
  absl::Status status = AdmitCall(*context, CallKind::kUncounted);
  if (status.ok()) {
    *response = list_response_;
    stats.sent_bytes = response->ByteSizeLong();
  }
  RecordCall("ListActivations", *context, start, stats, status);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(wire::ToGrpcStatus(status));
  return reactor;
}

}  // namespace server
}  // namespace actserve
