// See chunked.h.
#include "client/sdk/chunked.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "actserve/v1/activation.pb.h"
#include "client/sdk/chunk_plan.h"
#include "client/sdk/compute_stream.h"
#include "proto/convert.h"
#include "proto/tensor_wire.h"

namespace actserve {
namespace client_internal {
namespace {

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

}  // namespace

absl::Status CheckChunkable(const TensorView& input, const std::optional<TensorView>& grad_output) {
  absl::StatusOr<int64_t> elements =
      CheckTensorBytes(input.dtype, input.shape, input.data.size());
  if (!elements.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("input: ", elements.status().message()));
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

absl::StatusOr<std::optional<Tensor>> ComputeChunkedOn(
    const CallStart& call, const TensorView& input,
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
  const ChunkPlan plan = PlanChunks(input.dtype, input.shape, spec, weight_count, chunk_bytes);
  if (plan.cut == ChunkPlan::Cut::kColumns) {
    // Each chunk is a [rows, columns] block reduced along its dimension 0, whatever the
    // caller's rank and however it named that dimension (dim=-3 of a 3-d tensor).
    if (activation_proto.has_softmax()) activation_proto.mutable_softmax()->set_dim(0);
    if (activation_proto.has_log_softmax()) activation_proto.mutable_log_softmax()->set_dim(0);
  }
  const v1::DType dtype = wire::DTypeToProto(input.dtype);
  std::vector<double> grad_weight_sum;
  std::vector<int64_t> grad_weight_shape;
  bool have_grad_weight = false;

  auto make_request = [&](size_t chunk) -> absl::StatusOr<grpc::ByteBuffer> {
    const ChunkGeometry g = ChunkAt(plan, input.shape, chunk);
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
    const ChunkGeometry g = ChunkAt(plan, input.shape, chunk);
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

  absl::Status streamed = RunComputeStream(call, plan.chunks, static_cast<size_t>(window),
                                           make_request, on_response);
  if (!streamed.ok()) return streamed;
  if (!have_grad_weight) return std::optional<Tensor>();
  absl::StatusOr<Tensor> grad_weight =
      Tensor::FromDoubles(input.dtype, std::move(grad_weight_shape), grad_weight_sum);
  if (!grad_weight.ok()) return grad_weight.status();
  return std::optional<Tensor>(*std::move(grad_weight));
}

}  // namespace client_internal
}  // namespace actserve
