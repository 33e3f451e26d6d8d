// Client::ComputeChunked and Client::ComputeChunkedInto (see actserve/client.h): one tensor
// of any size over one ComputeStream call, sent from and received into the caller's
// memory through proto/tensor_wire.h.
#include <grpcpp/generic/generic_stub.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "actserve/client.h"
#include "actserve/v1/activation.pb.h"
#include "client/call_start.h"
#include "client/grpc_status.h"
#include "grpcpp/client_context.h"
#include "proto/convert.h"
#include "proto/tensor_wire.h"

namespace actserve {
namespace {

constexpr char kComputeStreamMethod[] = "/actserve.v1.ActivationService/ComputeStream";

// OK when `input` holds exactly its shape's bytes and `grad_output`, if any, has the same
// dtype and shape; InvalidArgument naming the problem otherwise.
absl::Status CheckChunkable(const TensorView& input, const std::optional<TensorView>& grad_output) {
  absl::StatusOr<int64_t> elements = NumElements(input.shape);
  if (!elements.ok())
    return absl::InvalidArgumentError(absl::StrCat("input: ", elements.status().message()));
  if (DTypeSize(input.dtype) == 0 ||
      static_cast<size_t>(*elements) * DTypeSize(input.dtype) != input.data.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("input: ", input.data.size(), " bytes of data, but shape ",
                     ShapeToString(input.shape), " ", DTypeName(input.dtype), " needs ",
                     *elements * static_cast<int64_t>(DTypeSize(input.dtype))));
  }
  if (grad_output.has_value() && (grad_output->dtype != input.dtype ||
                                  !std::equal(grad_output->shape.begin(), grad_output->shape.end(),
                                              input.shape.begin(), input.shape.end()) ||
                                  grad_output->data.size() != input.data.size())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "grad_output: ", ShapeToString(grad_output->shape), " ", DTypeName(grad_output->dtype),
        " with ", grad_output->data.size(), " bytes, but the input is ", ShapeToString(input.shape),
        " ", DTypeName(input.dtype), " with ", input.data.size()));
  }
  return absl::OkStatus();
}

// How a tensor is cut. Chunks of kFlat, kRows, kPlanes and kWhole are contiguous byte
// ranges of the tensor; chunks of kColumns are gathered (and their results scattered) row
// by row.
//
// PReLU with one weight per channel (dimension 1 of [N, C, rest...]) is cut by rows when
// a row fits a chunk; otherwise by kPlanes: runs of whole channel planes of one row, sent
// as [1, k, plane] with the k weights they use, or, when one plane is itself larger than
// a chunk, runs within a plane, sent as [1, 1, m] with that plane's weight. Each chunk's
// grad_weight then adds to the weights it used.
struct ChunkPlan {
  enum class Cut { kFlat, kRows, kPlanes, kColumns, kWhole };
  Cut cut = Cut::kWhole;
  size_t element_size = 0;
  int64_t units = 1;           // elements (kFlat), rows (kRows) or columns (kColumns)
  int64_t unit_elements = 1;   // elements per unit; kColumns: per column, i.e. rows
  int64_t per_chunk = 1;       // units per chunk
  int64_t row_elements = 1;    // kColumns: elements per row of the [rows, rest] view
  // kPlanes: the [rows, channels, plane] view; a chunk covers `per_chunk` planes of one
  // row (planes_per_chunk >= 1), or `per_chunk` elements of one plane otherwise.
  int64_t channels = 1;
  int64_t plane_elements = 1;
  int64_t chunks_per_row = 1;    // planes_per_chunk >= 1
  int64_t chunks_per_plane = 1;  // a plane split into several chunks
  bool split_planes = false;
  size_t chunks = 1;
};

// One chunk's shape and place.
struct ChunkGeometry {
  std::vector<int64_t> shape;
  bool gathered = false;
  size_t offset = 0;  // bytes, contiguous chunks
  size_t bytes = 0;
  int64_t first_column = 0, columns = 0;  // kColumns
  // kPlanes: the PReLU weights this chunk uses, [first_weight, first_weight + weights).
  int64_t first_weight = 0, weights = 0;
};

ChunkPlan PlanChunks(const TensorView& input, const ActivationSpec& spec,
                     int64_t weight_count, int64_t chunk_bytes) {
  ChunkPlan plan;
  plan.element_size = DTypeSize(input.dtype);
  const int64_t elements = static_cast<int64_t>(input.data.size() / plan.element_size);
  const int64_t per_chunk_elements =
      std::max<int64_t>(1, chunk_bytes / static_cast<int64_t>(plan.element_size));
  const size_t rank = input.shape.size();
  const bool softmax =
      spec.kind == ActivationKind::kSoftmax || spec.kind == ActivationKind::kLogSoftmax;
  // PReLU with a single weight is elementwise like any other activation.
  const bool per_channel = spec.kind == ActivationKind::kPrelu && weight_count > 1;
  if (elements == 0 || rank == 0) return plan;  // one chunk, as it is
  if (!softmax && !per_channel) {
    plan.cut = ChunkPlan::Cut::kFlat;
    plan.units = elements;
    plan.unit_elements = 1;
  } else {
    const int64_t rows = input.shape[0];
    const int64_t rest = elements / rows;
    int64_t dim = softmax ? static_cast<int64_t>(spec.Param("dim")) : 1;
    if (dim < 0) dim += static_cast<int64_t>(rank);
    if (per_channel && rest > per_chunk_elements) {
      // Per-channel weights need rank >= 2 (the server checks the count against
      // dimension 1), so the [rows, channels, plane] view exists.
      plan.cut = ChunkPlan::Cut::kPlanes;
      plan.channels = input.shape[1];
      plan.plane_elements = rest / plan.channels;
      const int64_t planes_per_chunk = per_chunk_elements / plan.plane_elements;
      if (planes_per_chunk >= 1) {
        plan.per_chunk = planes_per_chunk;
        plan.chunks_per_row = (plan.channels + planes_per_chunk - 1) / planes_per_chunk;
        plan.chunks = static_cast<size_t>(rows * plan.chunks_per_row);
      } else {
        plan.split_planes = true;
        plan.per_chunk = per_chunk_elements;
        plan.chunks_per_plane = (plan.plane_elements + per_chunk_elements - 1) / per_chunk_elements;
        plan.chunks = static_cast<size_t>(rows * plan.channels * plan.chunks_per_plane);
      }
      return plan;
    }
    if (!softmax || dim != 0) {
      plan.cut = ChunkPlan::Cut::kRows;
      plan.units = rows;
      plan.unit_elements = rest;
    } else if (rank >= 2 && rest > 1) {
      plan.cut = ChunkPlan::Cut::kColumns;
      plan.units = rest;
      plan.unit_elements = rows;
      plan.row_elements = rest;
    } else {
      return plan;  // a 1-D softmax: every element in one reduction
    }
  }
  plan.per_chunk = std::max<int64_t>(1, per_chunk_elements / plan.unit_elements);
  plan.chunks = static_cast<size_t>((plan.units + plan.per_chunk - 1) / plan.per_chunk);
  return plan;
}

ChunkGeometry Geometry(const ChunkPlan& plan, const TensorView& input, size_t chunk) {
  ChunkGeometry g;
  const int64_t first = static_cast<int64_t>(chunk) * plan.per_chunk;
  const int64_t count = std::min(plan.per_chunk, plan.units - first);
  switch (plan.cut) {
    case ChunkPlan::Cut::kWhole:
      g.shape.assign(input.shape.begin(), input.shape.end());
      g.bytes = input.data.size();
      break;
    case ChunkPlan::Cut::kFlat:
      g.shape = {count};
      g.offset = static_cast<size_t>(first) * plan.element_size;
      g.bytes = static_cast<size_t>(count) * plan.element_size;
      break;
    case ChunkPlan::Cut::kRows:
      g.shape.assign(input.shape.begin(), input.shape.end());
      g.shape[0] = count;
      g.offset = static_cast<size_t>(first * plan.unit_elements) * plan.element_size;
      g.bytes = static_cast<size_t>(count * plan.unit_elements) * plan.element_size;
      break;
    case ChunkPlan::Cut::kPlanes: {
      int64_t row, first_element, count_elements;
      if (!plan.split_planes) {
        row = static_cast<int64_t>(chunk) / plan.chunks_per_row;
        g.first_weight = (static_cast<int64_t>(chunk) % plan.chunks_per_row) * plan.per_chunk;
        g.weights = std::min(plan.per_chunk, plan.channels - g.first_weight);
        first_element = g.first_weight * plan.plane_elements;
        count_elements = g.weights * plan.plane_elements;
        g.shape = {1, g.weights, plan.plane_elements};
      } else {
        const int64_t plane = static_cast<int64_t>(chunk) / plan.chunks_per_plane;
        row = plane / plan.channels;
        g.first_weight = plane % plan.channels;
        g.weights = 1;
        const int64_t within = (static_cast<int64_t>(chunk) % plan.chunks_per_plane) * plan.per_chunk;
        first_element = g.first_weight * plan.plane_elements + within;
        count_elements = std::min(plan.per_chunk, plan.plane_elements - within);
        g.shape = {1, 1, count_elements};
      }
      const int64_t row_elements = plan.channels * plan.plane_elements;
      g.offset = static_cast<size_t>(row * row_elements + first_element) * plan.element_size;
      g.bytes = static_cast<size_t>(count_elements) * plan.element_size;
      break;
    }
    case ChunkPlan::Cut::kColumns:
      // Softmax along dimension 0 of [rows, rest]: each column is its own reduction.
      g.shape = {input.shape[0], count};
      g.gathered = true;
      g.first_column = first;
      g.columns = count;
      g.bytes = static_cast<size_t>(count * plan.unit_elements) * plan.element_size;
      break;
  }
  return g;
}

// Copies the chunk's columns of `whole` (a [rows, row_elements] tensor) into `chunk`, or
// back when `scatter`.
void MoveColumns(const ChunkPlan& plan, const ChunkGeometry& g, const char* from, char* to,
                 bool scatter) {
  const size_t row_bytes = static_cast<size_t>(plan.row_elements) * plan.element_size;
  const size_t chunk_row_bytes = static_cast<size_t>(g.columns) * plan.element_size;
  const size_t column_offset = static_cast<size_t>(g.first_column) * plan.element_size;
  for (int64_t row = 0; row < plan.unit_elements; ++row) {
    const size_t whole_at = static_cast<size_t>(row) * row_bytes + column_offset;
    const size_t chunk_at = static_cast<size_t>(row) * chunk_row_bytes;
    if (scatter) {
      std::memcpy(to + whole_at, from + chunk_at, chunk_row_bytes);
    } else {
      std::memcpy(to + chunk_at, from + whole_at, chunk_row_bytes);
    }
  }
}

// The data of one chunk of `whole` as a slice: the caller's memory itself when the chunk
// is contiguous, a gathered copy otherwise.
grpc::Slice ChunkSlice(const ChunkPlan& plan, const ChunkGeometry& g, const TensorView& whole) {
  if (!g.gathered) return wire::UnownedSlice(whole.data.subspan(g.offset, g.bytes));
  grpc::Slice slice(g.bytes);
  MoveColumns(plan, g, whole.data.data(), reinterpret_cast<char*>(const_cast<uint8_t*>(slice.begin())),
              /*scatter=*/false);
  return slice;
}

// One ComputeStream call over `count` requests: `make_request(i)` builds the i-th (called
// in order, with at most `window` sent and unanswered), `on_response(i, bytes)` takes the
// i-th response in order. The first error from either cancels the call and is returned.
class ChunkStream final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  ChunkStream(grpc::ClientContext* context, size_t count, int window,
              std::function<absl::StatusOr<grpc::ByteBuffer>(size_t)> make_request,
              std::function<absl::Status(size_t, grpc::ByteBuffer*)> on_response)
      : context_(*context),
        count_(count),
        window_(static_cast<size_t>(window)),
        make_request_(std::move(make_request)),
        on_response_(std::move(on_response)) {}

  absl::Status Run(grpc::GenericStub* stub) {
    stub->PrepareBidiStreamingCall(&context_, kComputeStreamMethod, grpc::StubOptions(), this);
    StartRead(&response_);
    MaybeWrite();
    StartCall();
    done_.WaitForNotification();
    absl::MutexLock lock(&mu_);
    if (!error_.ok()) return error_;
    if (!status_.ok()) return status_;
    if (received_ != count_) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed reply from the server: the stream ended after ", received_,
                       " of ", count_, " responses"));
    }
    return absl::OkStatus();
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      request_.Clear();
      if (!ok) return;  // the call has ended; OnDone says why
    }
    MaybeWrite();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    size_t index;
    {
      absl::MutexLock lock(&mu_);
      index = received_;
    }
    absl::Status taken = on_response_(index, &response_);
    if (!taken.ok()) {
      Fail(absl::Status(taken.code(),
                        absl::StrCat("stream response ", index, ": ", taken.message())));
      return;
    }
    bool more = false;
    {
      absl::MutexLock lock(&mu_);
      ++received_;
      more = received_ < count_;
    }
    if (more) StartRead(&response_);
    MaybeWrite();
  }

  void OnDone(const grpc::Status& status) override {
    {
      absl::MutexLock lock(&mu_);
      status_ = client_internal::FromGrpcStatus(status);
    }
    done_.Notify();
  }

 private:
  // Records the first error and cancels the call (outside the lock: cancelling may run
  // reactions).
  void Fail(absl::Status status) {
    {
      absl::MutexLock lock(&mu_);
      if (error_.ok()) error_ = std::move(status);
    }
    context_.TryCancel();
  }

  void MaybeWrite() {
    size_t index;
    {
      absl::MutexLock lock(&mu_);
      if (writing_ || closed_ || !error_.ok()) return;
      if (sent_ == count_) {
        closed_ = true;
      } else if (sent_ - received_ >= window_) {
        return;  // the window is full: the next response makes room
      } else {
        writing_ = true;
      }
      index = sent_;
    }
    if (index == count_) {
      StartWritesDone();
      return;
    }
    absl::StatusOr<grpc::ByteBuffer> request = make_request_(index);
    if (!request.ok()) {
      {
        absl::MutexLock lock(&mu_);
        writing_ = false;
      }
      Fail(request.status());
      return;
    }
    absl::MutexLock lock(&mu_);
    request_ = *std::move(request);
    ++sent_;
    StartWrite(&request_);
  }

  grpc::ClientContext& context_;
  const size_t count_;
  const size_t window_;
  std::function<absl::StatusOr<grpc::ByteBuffer>(size_t)> make_request_;
  std::function<absl::Status(size_t, grpc::ByteBuffer*)> on_response_;
  grpc::ByteBuffer response_;  // the read in progress
  absl::Notification done_;

  absl::Mutex mu_;
  grpc::ByteBuffer request_ ABSL_GUARDED_BY(mu_);  // the write in progress
  size_t sent_ ABSL_GUARDED_BY(mu_) = 0;
  size_t received_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

// Client::ComputeChunkedInto on a started call.
absl::StatusOr<std::optional<Tensor>> ComputeChunkedOn(
    const client_internal::CallStart& call, const TensorView& input,
    const ActivationArg& activation, Mode mode, const std::optional<TensorView>& grad_output,
    const std::optional<TensorView>& prelu_weight, const Client::ChunkedOutputs& outputs,
    int64_t chunk_bytes, int window) {
  // Everything that would make a chunk invalid is checked on the whole tensor first, so
  // that the error names the caller's tensor and nothing is sent.
  if (!activation.spec().ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("activation: ", activation.spec().status().message()));
  }
  const ActivationSpec& spec = *activation.spec();
  if (absl::Status checked = CheckChunkable(input, grad_output); !checked.ok()) return checked;
  if (chunk_bytes <= 0 || window <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chunk_bytes and window must be positive, got ", chunk_bytes, " and ", window));
  }
  const size_t want_output = ComputesOutput(mode) ? input.data.size() : 0;
  const size_t want_gradient = ComputesGradient(mode) ? input.data.size() : 0;
  if (outputs.output.size() != want_output || outputs.grad_input.size() != want_gradient) {
    return absl::InvalidArgumentError(absl::StrCat(
        "outputs: ", outputs.output.size(), " and ", outputs.grad_input.size(),
        " bytes for output and grad_input, but ", ModeName(mode), " of this input needs ",
        want_output, " and ", want_gradient));
  }
  if (prelu_weight.has_value() && spec.kind != ActivationKind::kPrelu) {
    return absl::InvalidArgumentError(
        absl::StrCat("a PReLU weight was given for ", FormatActivationSpec(spec)));
  }

  // The activation as it goes on every chunk, with the PReLU weight in it (the default
  // single weight in the input's dtype when none is given, as Batch::Add sends it).
  v1::Activation activation_proto;
  wire::ActivationToProto(spec, &activation_proto);
  if (spec.kind == ActivationKind::kPrelu) {
    v1::Tensor* weight = activation_proto.mutable_prelu()->mutable_weight();
    if (prelu_weight.has_value()) {
      wire::SetTensorHeader(prelu_weight->dtype, prelu_weight->shape, weight);
      weight->set_data(prelu_weight->data.data(), prelu_weight->data.size());
    } else {
      const double value = spec.Param("weight");
      absl::StatusOr<Tensor> one = Tensor::FromDoubles(input.dtype, {}, {&value, 1});
      if (!one.ok()) return one.status();
      wire::SetTensorHeader(one->dtype(), {}, weight);
      weight->set_data(one->data());
    }
  }

  // The weights, when one per channel: a chunk of whole channel planes (kPlanes) sends
  // only the weights of its channels, so their count must match dimension 1 here.
  int64_t weight_count = 1;
  if (prelu_weight.has_value() && DTypeSize(prelu_weight->dtype) > 0) {
    weight_count = static_cast<int64_t>(prelu_weight->data.size() / DTypeSize(prelu_weight->dtype));
  }
  if (spec.kind == ActivationKind::kPrelu && weight_count > 1) {
    const int64_t channels = input.shape.size() >= 2 ? input.shape[1] : 1;
    if (weight_count != channels || prelu_weight->dtype != input.dtype) {
      return absl::InvalidArgumentError(absl::StrCat(
          "prelu_weight: ", weight_count, " ", DTypeName(prelu_weight->dtype),
          " values, but the input ", ShapeToString(input.shape), " ", DTypeName(input.dtype),
          " has ", channels, " channels (dimension 1); expected 1 or ", channels,
          " of the input's dtype"));
    }
  }
  const ChunkPlan plan = PlanChunks(input, spec, weight_count, chunk_bytes);
  const v1::DType dtype = wire::DTypeToProto(input.dtype);
  std::vector<double> grad_weight_sum;
  std::vector<int64_t> grad_weight_shape;
  bool have_grad_weight = false;

  auto make_request = [&](size_t chunk) -> absl::StatusOr<grpc::ByteBuffer> {
    const ChunkGeometry g = Geometry(plan, input, chunk);
    std::vector<wire::ItemToEncode> items(1);
    items[0].input = {dtype, g.shape, ChunkSlice(plan, g, input)};
    if (grad_output.has_value()) {
      items[0].grad_output = wire::TensorToEncode{dtype, g.shape, ChunkSlice(plan, g, *grad_output)};
    }
    items[0].activation = &activation_proto;
    v1::Activation chunk_activation;
    if (plan.cut == ChunkPlan::Cut::kPlanes) {
      // Only this chunk's channels, and their weights.
      chunk_activation = activation_proto;
      const size_t weight_size = DTypeSize(prelu_weight->dtype);
      v1::Tensor* weight = chunk_activation.mutable_prelu()->mutable_weight();
      wire::SetTensorHeader(prelu_weight->dtype, {g.weights}, weight);
      weight->set_data(prelu_weight->data.data() + g.first_weight * weight_size,
                       static_cast<size_t>(g.weights) * weight_size);
      items[0].activation = &chunk_activation;
    }
    items[0].mode = wire::ModeToProto(mode);
    return wire::EncodeComputeRequest(std::move(items));
  };

  // Runs on a gRPC thread, one response at a time, in order.
  std::string gathered_output, gathered_grad, grad_weight_bytes;
  auto on_response = [&](size_t chunk, grpc::ByteBuffer* bytes) -> absl::Status {
    const ChunkGeometry g = Geometry(plan, input, chunk);
    v1::ComputeResponse header;
    absl::Status parsed = wire::ParseComputeResponse(
        bytes, &header,
        [&](int index, wire::TensorField field, size_t size) -> absl::StatusOr<char*> {
          if (field == wire::TensorField::kGradWeight) {
            grad_weight_bytes.assign(size, '\0');
            return grad_weight_bytes.data();
          }
          const bool is_output = field == wire::TensorField::kOutput;
          const absl::Span<char> whole = is_output ? outputs.output : outputs.grad_input;
          if (index != 0 || size != g.bytes || whole.empty()) {
            return absl::InvalidArgumentError(absl::StrCat(
                "malformed reply from the server: chunk ", chunk, " has a mis-sized result"));
          }
          if (!g.gathered) return whole.data() + g.offset;
          std::string& staging = is_output ? gathered_output : gathered_grad;
          staging.resize(size);
          return staging.data();
        });
    if (!parsed.ok()) return parsed;
    if (header.results_size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat("malformed reply from the server: ",
                                                     header.results_size(), " results for 1 item"));
    }
    const v1::ComputeResult& result = header.results(0);
    if ((ComputesOutput(mode) && (!result.has_output() || result.output().dtype() != dtype)) ||
        (ComputesGradient(mode) &&
         (!result.has_grad_input() || result.grad_input().dtype() != dtype))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "malformed reply from the server: chunk ", chunk, " has a missing or mis-typed result"));
    }
    if (g.gathered) {
      if (ComputesOutput(mode)) {
        MoveColumns(plan, g, gathered_output.data(), outputs.output.data(), /*scatter=*/true);
      }
      if (ComputesGradient(mode)) {
        MoveColumns(plan, g, gathered_grad.data(), outputs.grad_input.data(), /*scatter=*/true);
      }
    }
    if (result.has_grad_weight()) {
      absl::StatusOr<Tensor> partial = Tensor::FromBytes(
          input.dtype,
          std::vector<int64_t>(result.grad_weight().shape().begin(),
                               result.grad_weight().shape().end()),
          std::move(grad_weight_bytes));
      grad_weight_bytes.clear();
      if (!partial.ok()) return partial.status();
      const std::vector<double> values = partial->ToDoubles();
      // A kPlanes chunk answers for its own weights only; the sum has the shape of the
      // caller's weight.
      const bool sliced = plan.cut == ChunkPlan::Cut::kPlanes;
      if (!have_grad_weight) {
        grad_weight_sum.assign(sliced ? static_cast<size_t>(weight_count) : values.size(), 0.0);
        if (sliced) {
          grad_weight_shape.assign(prelu_weight->shape.begin(), prelu_weight->shape.end());
        } else {
          grad_weight_shape.assign(partial->shape().begin(), partial->shape().end());
        }
        have_grad_weight = true;
      }
      const size_t first = sliced ? static_cast<size_t>(g.first_weight) : 0;
      const size_t expected = sliced ? static_cast<size_t>(g.weights) : grad_weight_sum.size();
      if (values.size() != expected) {
        return absl::InvalidArgumentError(absl::StrCat(
            "malformed reply from the server: chunk ", chunk, " has a mis-sized grad_weight"));
      }
      for (size_t i = 0; i < values.size(); ++i) grad_weight_sum[first + i] += values[i];
    }
    return absl::OkStatus();
  };

  ChunkStream stream(call.context.get(), plan.chunks, window, make_request, on_response);
  if (absl::Status status = stream.Run(call.generic); !status.ok()) return status;
  if (!have_grad_weight) return std::optional<Tensor>();
  absl::StatusOr<Tensor> grad_weight =
      Tensor::FromDoubles(input.dtype, std::move(grad_weight_shape), grad_weight_sum);
  if (!grad_weight.ok()) return grad_weight.status();
  return std::optional<Tensor>(*std::move(grad_weight));
}

}  // namespace

absl::StatusOr<std::optional<Tensor>> Client::ComputeChunkedInto(
    const TensorView& input, const ActivationArg& activation, Mode mode,
    const std::optional<TensorView>& grad_output, const std::optional<TensorView>& prelu_weight,
    const ChunkedOutputs& outputs, int64_t chunk_bytes, int window) const {
  absl::StatusOr<client_internal::CallStart> call = StartCall();
  if (!call.ok()) return call.status();
  return ComputeChunkedOn(*call, input, activation, mode, grad_output, prelu_weight, outputs,
                          chunk_bytes, window);
}

absl::StatusOr<ItemOutput> Client::ComputeChunked(const TensorView& input,
                                                  const ActivationArg& activation, Mode mode,
                                                  const std::optional<TensorView>& grad_output,
                                                  const std::optional<TensorView>& prelu_weight,
                                                  int64_t chunk_bytes) const {
  // Started before the results are allocated, so that a Client whose setup failed
  // returns its error without first allocating the input's size twice.
  absl::StatusOr<client_internal::CallStart> call = StartCall();
  if (!call.ok()) return call.status();
  if (absl::Status checked = CheckChunkable(input, grad_output); !checked.ok()) return checked;
  // The results are the returned tensors' own strings, written in place chunk by chunk.
  std::string output(ComputesOutput(mode) ? input.data.size() : 0, '\0');
  std::string grad_input(ComputesGradient(mode) ? input.data.size() : 0, '\0');
  absl::StatusOr<std::optional<Tensor>> grad_weight =
      ComputeChunkedOn(*call, input, activation, mode, grad_output, prelu_weight,
                       ChunkedOutputs{absl::MakeSpan(output.data(), output.size()),
                                      absl::MakeSpan(grad_input.data(), grad_input.size())},
                       chunk_bytes, kDefaultChunkWindow);
  if (!grad_weight.ok()) return grad_weight.status();
  ItemOutput result;
  const std::vector<int64_t> shape(input.shape.begin(), input.shape.end());
  if (ComputesOutput(mode)) {
    absl::StatusOr<Tensor> tensor = Tensor::FromBytes(input.dtype, shape, std::move(output));
    if (!tensor.ok()) return tensor.status();
    result.output = *std::move(tensor);
  }
  if (ComputesGradient(mode)) {
    absl::StatusOr<Tensor> tensor = Tensor::FromBytes(input.dtype, shape, std::move(grad_input));
    if (!tensor.ok()) return tensor.status();
    result.grad_input = *std::move(tensor);
  }
  result.grad_weight = *std::move(grad_weight);
  return result;
}

}  // namespace actserve
