#include "src/engine.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "src/kernels/activation_kernels.h"

namespace actserve {
namespace {

// Element codecs: read an element as double, write a double rounded once to the dtype.
// memcpy keeps unaligned data (protobuf strings) legal and compiles to a plain move.
// Used for PReLU weights; the activations themselves run through the SIMD kernels.
struct Float32Codec {
  static double Load(const char* data, int64_t i) {
    float value;
    std::memcpy(&value, data + i * 4, 4);
    return value;
  }
  static void Store(char* data, int64_t i, double value) {
    const float narrowed = static_cast<float>(value);
    std::memcpy(data + i * 4, &narrowed, 4);
  }
};
struct Float64Codec {
  static double Load(const char* data, int64_t i) {
    double value;
    std::memcpy(&value, data + i * 8, 8);
    return value;
  }
  static void Store(char* data, int64_t i, double value) { std::memcpy(data + i * 8, &value, 8); }
};
template <double (*Decode)(uint16_t), uint16_t (*Encode)(double)>
struct HalfCodec {
  static double Load(const char* data, int64_t i) {
    uint16_t bits;
    std::memcpy(&bits, data + i * 2, 2);
    return Decode(bits);
  }
  static void Store(char* data, int64_t i, double value) {
    const uint16_t bits = Encode(value);
    std::memcpy(data + i * 2, &bits, 2);
  }
};
using Float16Codec = HalfCodec<Float16ToDouble, RoundToFloat16>;
using BFloat16Codec = HalfCodec<BFloat16ToDouble, RoundToBFloat16>;

// Calls `fn(Codec{})` with the codec of `dtype` (which has been validated).
template <typename Fn>
auto WithCodec(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat64:
      return fn(Float64Codec{});
    case DType::kFloat16:
      return fn(Float16Codec{});
    case DType::kBFloat16:
      return fn(BFloat16Codec{});
    case DType::kFloat32:
    case DType::kUnspecified:
      break;
  }
  return fn(Float32Codec{});
}

// What validation learns about an item, reused by the computation.
struct ItemPlan {
  ResultSizes sizes;
  // PReLU: element i uses weight (i / prelu_inner) % prelu_channels.
  int64_t prelu_channels = 1;
  int64_t prelu_inner = 1;
  // softmax / log_softmax: the input seen as [outer, lane, inner], reduced along `lane`.
  int64_t softmax_outer = 1;
  int64_t softmax_lane = 1;
  int64_t softmax_inner = 1;
};

bool IsValidDType(DType dtype) {
  for (DType valid : AllDTypes()) {
    if (dtype == valid) return true;
  }
  return false;
}

// Checks a tensor's dtype, shape and byte count; returns its element count.
absl::StatusOr<int64_t> ValidateTensor(const ConstTensorView& tensor, absl::string_view path) {
  if (!IsValidDType(tensor.dtype)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ".dtype: ", DTypeName(tensor.dtype),
        "; expected one of float32, float64, float16, bfloat16"));
  }
  absl::StatusOr<int64_t> elements = NumElements(tensor.shape);
  if (!elements.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", elements.status().message()));
  }
  const int64_t needed = *elements * static_cast<int64_t>(DTypeSize(tensor.dtype));
  if (static_cast<int64_t>(tensor.data.size()) != needed) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": ", tensor.data.size(), " bytes of data, but shape ",
        ShapeToString(tensor.shape), " ", DTypeName(tensor.dtype), " needs ", needed));
  }
  return elements;
}

absl::StatusOr<ItemPlan> PlanItem(const ComputeItem& item, absl::string_view path) {
  ItemPlan plan;
  absl::StatusOr<int64_t> elements = ValidateTensor(item.input, absl::StrCat(path, ".input"));
  if (!elements.ok()) return elements.status();
  plan.sizes.elements = *elements;
  const size_t input_bytes = item.input.data.size();
  const DType dtype = item.input.dtype;

  absl::Status spec_status = ValidateActivationSpec(item.activation);
  if (!spec_status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ".activation: ", spec_status.message()));
  }

  const bool gradient = ComputesGradient(item.mode);
  if (gradient && item.grad_output.has_value()) {
    const std::string grad_path = absl::StrCat(path, ".grad_output");
    const ConstTensorView& dy = *item.grad_output;
    if (dy.dtype != dtype) {
      return absl::InvalidArgumentError(
          absl::StrCat(grad_path, ": dtype ", DTypeName(dy.dtype),
                       " does not match the input's ", DTypeName(dtype)));
    }
    if (!std::equal(dy.shape.begin(), dy.shape.end(), item.input.shape.begin(),
                    item.input.shape.end())) {
      return absl::InvalidArgumentError(
          absl::StrCat(grad_path, ": shape ", ShapeToString(dy.shape),
                       " does not match the input's ", ShapeToString(item.input.shape)));
    }
    absl::StatusOr<int64_t> dy_elements = ValidateTensor(dy, grad_path);
    if (!dy_elements.ok()) return dy_elements.status();
  }

  const absl::Span<const int64_t> shape = item.input.shape;
  const int rank = static_cast<int>(shape.size());
  switch (item.activation.kind) {
    case ActivationKind::kPrelu: {
      // PyTorch: the channel dimension is dim 1; below rank 2 there is one channel.
      const int64_t channels = rank >= 2 ? shape[1] : 1;
      int64_t weights = 1;
      if (item.prelu_weight.has_value()) {
        const std::string weight_path = absl::StrCat(path, ".activation.prelu.weight");
        if (item.prelu_weight->dtype != dtype) {
          return absl::InvalidArgumentError(
              absl::StrCat(weight_path, ": dtype ", DTypeName(item.prelu_weight->dtype),
                           " does not match the input's ", DTypeName(dtype)));
        }
        absl::StatusOr<int64_t> weight_elements =
            ValidateTensor(*item.prelu_weight, weight_path);
        if (!weight_elements.ok()) return weight_elements.status();
        weights = *weight_elements;
        if (weights != 1 && weights != channels) {
          return absl::InvalidArgumentError(absl::StrCat(
              weight_path, ": ", weights, " values, but the input ",
              ShapeToString(shape), " has ", channels,
              " channels (dimension 1); expected 1 or ", channels));
        }
      }
      // Sub-products of the shape are bounded by the element count only when that is
      // nonzero: [0, 2^40, 2^40] has no elements but would overflow. Nothing is computed
      // for an empty tensor, so its layout is not needed.
      if (weights > 1 && plan.sizes.elements > 0) {
        plan.prelu_channels = channels;
        plan.prelu_inner = 1;
        for (int d = 2; d < rank; ++d) plan.prelu_inner *= shape[d];
      }
      if (gradient) {
        plan.sizes.grad_weight_elements = weights;
        plan.sizes.grad_weight_bytes = static_cast<size_t>(weights) * DTypeSize(dtype);
      }
      break;
    }
    case ActivationKind::kSoftmax:
    case ActivationKind::kLogSoftmax: {
      // As in PyTorch, a scalar behaves as a one-element vector: dim 0 or -1.
      const int effective_rank = rank == 0 ? 1 : rank;
      const double dim_value = item.activation.params[0];
      if (dim_value < -effective_rank || dim_value >= effective_rank) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ".activation: ", GetActivationInfo(item.activation.kind).name, ": dim ",
            static_cast<int64_t>(dim_value), " is out of range for a ", rank,
            "-dimensional input ", ShapeToString(shape), "; expected [", -effective_rank,
            ", ", effective_rank - 1, "]"));
      }
      if (rank > 0 && plan.sizes.elements > 0) {  // see the PReLU case on empty tensors
        const int dim = static_cast<int>(dim_value < 0 ? dim_value + rank : dim_value);
        plan.softmax_outer = 1;
        for (int d = 0; d < dim; ++d) plan.softmax_outer *= shape[d];
        plan.softmax_lane = shape[dim];
        plan.softmax_inner = 1;
        for (int d = dim + 1; d < rank; ++d) plan.softmax_inner *= shape[d];
      }
      break;
    }
    default:
      break;
  }

  if (ComputesOutput(item.mode)) plan.sizes.output_bytes = input_bytes;
  if (gradient) plan.sizes.grad_input_bytes = input_bytes;
  return plan;
}

absl::StatusOr<std::vector<ItemPlan>> PlanBatch(absl::Span<const ComputeItem> items,
                                                int64_t max_elements) {
  std::vector<ItemPlan> plans;
  plans.reserve(items.size());
  int64_t total_elements = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    absl::StatusOr<ItemPlan> plan = PlanItem(items[i], absl::StrCat("items[", i, "]"));
    if (!plan.ok()) return plan.status();
    total_elements += plan->sizes.elements;
    if (max_elements > 0 && total_elements > max_elements) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the batch has more than ", max_elements, " input elements (the limit) by items[",
          i, "]; split it into smaller requests"));
    }
    plans.push_back(*std::move(plan));
  }
  return plans;
}

// Elementwise activations, PReLU included, through the SIMD kernels
// (src/kernels/activation_kernels.h): one kernel call per chunk, or per run of one
// channel's elements for PReLU with per-channel weights. The kernels read each element's
// x and dy before writing its y and dx, so results may overwrite the inputs, and they
// give every element the same result wherever a chunk boundary falls.
template <typename Codec>
absl::Status ComputeElementwise(const ComputeItem& item, const ItemPlan& plan,
                                const ItemBuffers& out, const EngineOptions& options,
                                const std::atomic<bool>* cancelled) {
  const size_t element_size = DTypeSize(item.input.dtype);
  const char* x_data = item.input.data.data();
  const bool forward = ComputesOutput(item.mode);
  const bool backward = ComputesGradient(item.mode);
  const char* dy_data =
      backward && item.grad_output.has_value() ? item.grad_output->data.data() : nullptr;
  const bool is_prelu = item.activation.kind == ActivationKind::kPrelu;

  // PReLU weights, widened once. The weight gradient is summed per chunk and channel in
  // long double, then over chunks in chunk order, so it does not depend on thread count.
  std::vector<double> weights;
  if (is_prelu) {
    const int64_t weight_count =
        item.prelu_weight.has_value() ? static_cast<int64_t>(item.prelu_weight->data.size() /
                                                             DTypeSize(item.input.dtype))
                                      : 1;
    weights.resize(weight_count);
    for (int64_t c = 0; c < weight_count; ++c) {
      weights[c] = item.prelu_weight.has_value()
                       ? Codec::Load(item.prelu_weight->data.data(), c)
                       : item.activation.params[0];
    }
  }
  const int64_t n = plan.sizes.elements;
  const int64_t grain = options.chunk_elements;
  const int64_t chunks = (n + grain - 1) / grain;
  const size_t weight_count = weights.size();
  std::vector<long double> partial_weight_gradient(
      is_prelu && backward ? static_cast<size_t>(chunks) * weight_count : 0, 0.0L);

  absl::Status status = ParallelFor(
      options.pool, n, grain, cancelled, [&](int64_t chunk, int64_t begin, int64_t end) {
        long double* weight_gradient =
            partial_weight_gradient.empty()
                ? nullptr
                : partial_weight_gradient.data() + static_cast<size_t>(chunk) * weight_count;
        // Runs the kernel on [run_begin, run_end); for PReLU with the weight of `channel`.
        auto run = [&](int64_t run_begin, int64_t run_end, size_t channel) {
          kernels::ElementwiseCall call;
          call.kind = item.activation.kind;
          call.params[0] = is_prelu ? weights[channel] : item.activation.params[0];
          call.params[1] = item.activation.params[1];
          call.dtype = item.input.dtype;
          const size_t offset = static_cast<size_t>(run_begin) * element_size;
          call.x = x_data + offset;
          call.dy = dy_data != nullptr ? dy_data + offset : nullptr;
          call.y = forward ? out.output.data() + offset : nullptr;
          call.dx = backward ? out.grad_input.data() + offset : nullptr;
          call.n = static_cast<size_t>(run_end - run_begin);
          double run_weight_gradient = 0;
          if (weight_gradient != nullptr) call.weight_gradient = &run_weight_gradient;
          kernels::RunElementwise(call);
          if (weight_gradient != nullptr) weight_gradient[channel] += run_weight_gradient;
        };
        if (weight_count <= 1) {
          run(begin, end, 0);
          return;
        }
        for (int64_t i = begin; i < end;) {
          const int64_t run_end = std::min(end, (i / plan.prelu_inner + 1) * plan.prelu_inner);
          run(i, run_end, static_cast<size_t>((i / plan.prelu_inner) % plan.prelu_channels));
          i = run_end;
        }
      });
  if (!status.ok()) return status;
  if (!partial_weight_gradient.empty()) {
    for (size_t c = 0; c < weight_count; ++c) {
      long double sum = 0;
      for (int64_t chunk = 0; chunk < chunks; ++chunk) {
        sum += partial_weight_gradient[static_cast<size_t>(chunk) * weight_count + c];
      }
      Codec::Store(out.grad_weight.data(), static_cast<int64_t>(c), static_cast<double>(sum));
    }
  }
  return absl::OkStatus();
}

// softmax / log_softmax through the SIMD kernel (src/kernels/activation_kernels.h): the
// reductions along `dim` are independent, so chunks of them run in parallel. A chunk is
// about chunk_elements elements (at least one reduction); in the strided layout it is
// rounded up to a multiple of 256 adjacent reductions (whole blocks, which the kernel
// vectorizes across). Each reduction's result depends on its own elements only, so the
// bits do not depend on the thread count or on where chunks fall.
absl::Status ComputeSoftmax(const ComputeItem& item, const ItemPlan& plan,
                            const ItemBuffers& out, const EngineOptions& options,
                            const std::atomic<bool>* cancelled) {
  kernels::SoftmaxCall call;
  call.log = item.activation.kind == ActivationKind::kLogSoftmax;
  call.dtype = item.input.dtype;
  call.x = item.input.data.data();
  const bool backward = ComputesGradient(item.mode);
  call.dy = backward && item.grad_output.has_value() ? item.grad_output->data.data() : nullptr;
  call.y = ComputesOutput(item.mode) ? out.output.data() : nullptr;
  call.dx = backward ? out.grad_input.data() : nullptr;
  call.outer = plan.softmax_outer;
  call.lane = plan.softmax_lane;
  call.inner = plan.softmax_inner;
  const int64_t reductions = plan.sizes.elements == 0 ? 0 : call.outer * call.inner;
  int64_t per_chunk = std::max<int64_t>(1, options.chunk_elements / std::max<int64_t>(call.lane, 1));
  if (call.inner > 1) per_chunk = (per_chunk + 255) / 256 * 256;
  return ParallelFor(options.pool, reductions, per_chunk, cancelled,
                     [&](int64_t /*chunk*/, int64_t begin, int64_t end) {
                       kernels::RunSoftmax(call, begin, end);
                     });
}

absl::Status CheckBuffer(absl::Span<char> buffer, size_t expected, absl::string_view path,
                         absl::string_view name) {
  if (buffer.size() == expected) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(path, ": the ", name, " buffer has ",
                                                 buffer.size(), " bytes, expected ",
                                                 expected));
}

}  // namespace

absl::string_view ModeName(Mode mode) {
  switch (mode) {
    case Mode::kForward:
      return "forward";
    case Mode::kBackward:
      return "backward";
    case Mode::kForwardBackward:
      break;
  }
  return "forward_backward";
}

Engine::Engine(EngineOptions options) : options_(options) {}

absl::StatusOr<std::vector<ResultSizes>> Engine::Plan(
    absl::Span<const ComputeItem> items) const {
  absl::StatusOr<std::vector<ItemPlan>> plans = PlanBatch(items, options_.max_elements);
  if (!plans.ok()) return plans.status();
  std::vector<ResultSizes> sizes;
  sizes.reserve(plans->size());
  for (const ItemPlan& plan : *plans) sizes.push_back(plan.sizes);
  return sizes;
}

absl::Status Engine::Compute(absl::Span<const ComputeItem> items,
                             absl::Span<const ItemBuffers> buffers,
                             const std::atomic<bool>* cancelled) const {
  absl::StatusOr<std::vector<ItemPlan>> plans = PlanBatch(items, options_.max_elements);
  if (!plans.ok()) return plans.status();
  if (buffers.size() != items.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        buffers.size(), " result buffers for ", items.size(), " items"));
  }
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string path = absl::StrCat("items[", i, "]");
    const ResultSizes& sizes = (*plans)[i].sizes;
    for (absl::Status status :
         {CheckBuffer(buffers[i].output, sizes.output_bytes, path, "output"),
          CheckBuffer(buffers[i].grad_input, sizes.grad_input_bytes, path, "grad_input"),
          CheckBuffer(buffers[i].grad_weight, sizes.grad_weight_bytes, path, "grad_weight")}) {
      if (!status.ok()) return status;
    }
  }
  for (size_t i = 0; i < items.size(); ++i) {
    const ComputeItem& item = items[i];
    const ItemPlan& plan = (*plans)[i];
    if (options_.before_item_for_testing) options_.before_item_for_testing(item, cancelled);
    const bool elementwise = GetActivationInfo(item.activation.kind).elementwise;
    absl::Status status = WithCodec(item.input.dtype, [&](auto codec) {
      using Codec = decltype(codec);
      return elementwise
                 ? ComputeElementwise<Codec>(item, plan, buffers[i], options_, cancelled)
                 : ComputeSoftmax(item, plan, buffers[i], options_, cancelled);
    });
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ItemResult>> Engine::ComputeToStrings(
    absl::Span<const ComputeItem> items, const std::atomic<bool>* cancelled) const {
  absl::StatusOr<std::vector<ResultSizes>> sizes = Plan(items);
  if (!sizes.ok()) return sizes.status();
  std::vector<ItemResult> results(items.size());
  std::vector<ItemBuffers> buffers(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    results[i].output.resize((*sizes)[i].output_bytes);
    results[i].grad_input.resize((*sizes)[i].grad_input_bytes);
    results[i].grad_weight.resize((*sizes)[i].grad_weight_bytes);
    buffers[i] = {absl::MakeSpan(results[i].output), absl::MakeSpan(results[i].grad_input),
                  absl::MakeSpan(results[i].grad_weight)};
  }
  absl::Status status = Compute(items, buffers, cancelled);
  if (!status.ok()) return status;
  return results;
}

}  // namespace actserve
