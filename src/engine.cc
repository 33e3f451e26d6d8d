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

// How a per-channel PReLU is cut into work. The input is [outer, channels, inner], so
// channel c's elements are `outer` runs of `inner` contiguous elements; read in order,
// they form the channel's sequence of outer * inner elements. A unit of work is a range
// of whole channels when a channel is small, else one channel's piece of `grain`
// elements of its sequence. Every weight-gradient partial sum then belongs to exactly one
// channel: scratch is O(channels + chunks) however the channels are laid out (partial
// sums per chunk and channel would need channels x chunks of them, C^2 / grain for
// [1, C]), and each channel's sum is added up in an order fixed by `grain` alone, never
// by the thread count.
struct PreluLayout {
  PreluLayout(int64_t elements, int64_t channel_count, int64_t inner_size, int64_t grain)
      : channels(channel_count), inner(inner_size) {
    per_channel = elements / channels;
    pieces = std::max<int64_t>(1, (per_channel + grain - 1) / grain);
    piece_elements = pieces == 1 ? per_channel : grain;
    channels_per_unit =
        pieces == 1 ? std::max<int64_t>(1, grain / std::max<int64_t>(1, per_channel)) : 1;
  }
  // Long doubles of weight-gradient scratch: one per piece, none with a piece per channel
  // (such a unit holds its channels whole and writes their gradients directly).
  int64_t scratch_values() const { return pieces > 1 ? channels * pieces : 0; }

  int64_t channels;
  int64_t inner;
  int64_t per_channel = 0;       // outer * inner
  int64_t pieces = 1;            // per channel
  int64_t piece_elements = 0;    // of a channel's sequence, per piece
  int64_t channels_per_unit = 1;
};

bool IsValidDType(DType dtype) {
  for (DType valid : AllDTypes()) {
    if (dtype == valid) return true;
  }
  return false;
}

// The place of an item's field in error messages, "items[3].input". Built only when an
// error is reported: a batch may have thousands of valid items.
std::string ItemPath(size_t index, absl::string_view field = "") {
  return absl::StrCat("items[", index, "]", field);
}

// Checks a tensor's dtype, rank (at most `max_rank` dimensions; 0: any), shape and byte
// count; returns its element count. Errors name `field` of item `index`.
absl::StatusOr<int64_t> ValidateTensor(const ConstTensorView& tensor, size_t index,
                                       absl::string_view field, int max_rank) {
  const auto path = [&] { return ItemPath(index, field); };
  if (max_rank > 0 && tensor.shape.size() > static_cast<size_t>(max_rank)) {
    return absl::ResourceExhaustedError(absl::StrCat(path(), ".shape: ", tensor.shape.size(),
                                                     " dimensions, more than ", max_rank,
                                                     " (the limit)"));
  }
  if (!IsValidDType(tensor.dtype)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path(), ".dtype: ", DTypeName(tensor.dtype),
        "; expected one of float32, float64, float16, bfloat16"));
  }
  absl::StatusOr<int64_t> elements =
      CheckTensorBytes(tensor.dtype, tensor.shape, tensor.data.size());
  if (!elements.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path(), ": ", elements.status().message()));
  }
  return elements;
}

absl::StatusOr<ItemPlan> PlanItem(const ComputeItem& item, size_t index,
                                  const EngineOptions& options) {
  ItemPlan plan;
  absl::StatusOr<int64_t> elements = ValidateTensor(item.input, index, ".input", options.max_rank);
  if (!elements.ok()) return elements.status();
  plan.sizes.elements = *elements;
  const size_t input_bytes = item.input.data.size();
  const DType dtype = item.input.dtype;

  absl::Status spec_status = ValidateActivationSpec(item.activation);
  if (!spec_status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(ItemPath(index, ".activation"), ": ", spec_status.message()));
  }

  const bool gradient = ComputesGradient(item.mode);
  if (gradient && item.grad_output.has_value()) {
    const auto grad_path = [&] { return ItemPath(index, ".grad_output"); };
    const ConstTensorView& dy = *item.grad_output;
    if (dy.dtype != dtype) {
      return absl::InvalidArgumentError(
          absl::StrCat(grad_path(), ": dtype ", DTypeName(dy.dtype),
                       " does not match the input's ", DTypeName(dtype)));
    }
    if (!std::equal(dy.shape.begin(), dy.shape.end(), item.input.shape.begin(),
                    item.input.shape.end())) {
      return absl::InvalidArgumentError(
          absl::StrCat(grad_path(), ": shape ", ShapeToString(dy.shape),
                       " does not match the input's ", ShapeToString(item.input.shape)));
    }
    absl::StatusOr<int64_t> dy_elements =
        ValidateTensor(dy, index, ".grad_output", options.max_rank);
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
        constexpr absl::string_view kWeightField = ".activation.prelu.weight";
        const auto weight_path = [&] { return ItemPath(index, kWeightField); };
        if (item.prelu_weight->dtype != dtype) {
          return absl::InvalidArgumentError(
              absl::StrCat(weight_path(), ": dtype ", DTypeName(item.prelu_weight->dtype),
                           " does not match the input's ", DTypeName(dtype)));
        }
        absl::StatusOr<int64_t> weight_elements =
            ValidateTensor(*item.prelu_weight, index, kWeightField, options.max_rank);
        if (!weight_elements.ok()) return weight_elements.status();
        weights = *weight_elements;
        if (weights != 1 && weights != channels) {
          return absl::InvalidArgumentError(absl::StrCat(
              weight_path(), ": ", weights, " values, but the input ",
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
      // The weights widened to double; with a gradient, its partial sums (one per chunk
      // for one weight, else as PreluLayout cuts the work).
      plan.sizes.working_bytes = static_cast<size_t>(weights) * sizeof(double);
      if (gradient) {
        plan.sizes.grad_weight_elements = weights;
        plan.sizes.grad_weight_bytes = static_cast<size_t>(weights) * DTypeSize(dtype);
        const int64_t partial_sums =
            plan.prelu_channels > 1
                ? PreluLayout(plan.sizes.elements, plan.prelu_channels, plan.prelu_inner,
                              options.chunk_elements)
                      .scratch_values()
                : (plan.sizes.elements + options.chunk_elements - 1) / options.chunk_elements;
        plan.sizes.working_bytes += static_cast<size_t>(partial_sums) * sizeof(long double);
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
            ItemPath(index, ".activation"), ": ", GetActivationInfo(item.activation.kind).name,
            ": dim ",
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
                                                const EngineOptions& options) {
  const int64_t max_items = options.max_items;
  if (max_items > 0 && items.size() > static_cast<size_t>(max_items)) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the batch has ", items.size(), " items, more than ", max_items,
                     " (the limit); split it into smaller requests"));
  }
  const int64_t max_elements = options.max_elements;
  std::vector<ItemPlan> plans;
  plans.reserve(items.size());
  int64_t total_elements = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    absl::StatusOr<ItemPlan> plan = PlanItem(items[i], i, options);
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

// Runs the elementwise kernel on elements [begin, end) with the first parameter `param0`;
// returns the run's weight-gradient sum (sum of x*dy over x <= 0) when `weight_gradient`.
double RunKernel(const ComputeItem& item, const ItemBuffers& out, double param0, int64_t begin,
                 int64_t end, bool weight_gradient) {
  const size_t element_size = DTypeSize(item.input.dtype);
  const bool backward = ComputesGradient(item.mode);
  const size_t offset = static_cast<size_t>(begin) * element_size;
  kernels::ElementwiseCall call;
  call.kind = item.activation.kind;
  call.params[0] = param0;
  call.params[1] = item.activation.params[1];
  call.dtype = item.input.dtype;
  call.x = item.input.data.data() + offset;
  call.dy = backward && item.grad_output.has_value() ? item.grad_output->data.data() + offset
                                                     : nullptr;
  call.y = ComputesOutput(item.mode) ? out.output.data() + offset : nullptr;
  call.dx = backward ? out.grad_input.data() + offset : nullptr;
  call.n = static_cast<size_t>(end - begin);
  double run_weight_gradient = 0;
  if (weight_gradient) call.weight_gradient = &run_weight_gradient;
  kernels::RunElementwise(call);
  return run_weight_gradient;
}

// The PReLU weights, widened once: the item's weight tensor, or its one default value.
template <typename Codec>
std::vector<double> PreluWeights(const ComputeItem& item) {
  if (!item.prelu_weight.has_value()) return {item.activation.params[0]};
  std::vector<double> weights(item.prelu_weight->data.size() / DTypeSize(item.input.dtype));
  for (size_t c = 0; c < weights.size(); ++c) {
    weights[c] = Codec::Load(item.prelu_weight->data.data(), static_cast<int64_t>(c));
  }
  return weights;
}

// PReLU with one weight per channel (see PreluLayout).
template <typename Codec>
absl::Status ComputePreluPerChannel(const ComputeItem& item, const ItemPlan& plan,
                                    const ItemBuffers& out, const EngineOptions& options,
                                    const std::atomic<bool>* cancelled) {
  const std::vector<double> weights = PreluWeights<Codec>(item);
  const PreluLayout layout(plan.sizes.elements, plan.prelu_channels, plan.prelu_inner,
                           options.chunk_elements);
  const bool gradient = ComputesGradient(item.mode);
  std::vector<long double> scratch(gradient ? layout.scratch_values() : 0, 0.0L);

  // Channel c's sequence positions [begin, end): one kernel call per run it overlaps.
  // Returns their weight-gradient sum.
  auto run_channel = [&](int64_t c, int64_t begin, int64_t end) {
    long double sum = 0;
    for (int64_t position = begin; position < end;) {
      const int64_t row = position / layout.inner;
      const int64_t run_end = std::min(end, (row + 1) * layout.inner);
      const int64_t element = (row * layout.channels + c) * layout.inner + position % layout.inner;
      sum += RunKernel(item, out, weights[static_cast<size_t>(c)], element,
                       element + (run_end - position), gradient);
      position = run_end;
    }
    return sum;
  };
  absl::Status status;
  if (layout.pieces == 1) {
    status = ParallelFor(options.pool, layout.channels, layout.channels_per_unit, cancelled,
                         [&](int64_t /*chunk*/, int64_t begin, int64_t end) {
                           for (int64_t c = begin; c < end; ++c) {
                             const long double sum = run_channel(c, 0, layout.per_channel);
                             if (gradient) {
                               Codec::Store(out.grad_weight.data(), c, static_cast<double>(sum));
                             }
                           }
                         });
  } else {
    status = ParallelFor(
        options.pool, layout.channels * layout.pieces, 1, cancelled,
        [&](int64_t unit, int64_t /*begin*/, int64_t /*end*/) {
          const int64_t begin = (unit % layout.pieces) * layout.piece_elements;
          const long double sum =
              run_channel(unit / layout.pieces, begin,
                          std::min(layout.per_channel, begin + layout.piece_elements));
          if (gradient) scratch[static_cast<size_t>(unit)] = sum;
        });
  }
  if (!status.ok()) return status;
  if (gradient && layout.pieces > 1) {
    for (int64_t c = 0; c < layout.channels; ++c) {
      long double sum = 0;
      for (int64_t p = 0; p < layout.pieces; ++p) {
        sum += scratch[static_cast<size_t>(c * layout.pieces + p)];
      }
      Codec::Store(out.grad_weight.data(), c, static_cast<double>(sum));
    }
  }
  return absl::OkStatus();
}

// Elementwise activations through the SIMD kernels (src/kernels/activation_kernels.h),
// one kernel call per chunk; PReLU with one weight per channel goes through
// ComputePreluPerChannel. The kernels read each element's x and dy before writing its y
// and dx, so results may overwrite the inputs, and they give every element the same
// result wherever a chunk boundary falls.
template <typename Codec>
absl::Status ComputeElementwise(const ComputeItem& item, const ItemPlan& plan,
                                const ItemBuffers& out, const EngineOptions& options,
                                const std::atomic<bool>* cancelled) {
  const bool is_prelu = item.activation.kind == ActivationKind::kPrelu;
  if (is_prelu && plan.prelu_channels > 1) {
    return ComputePreluPerChannel<Codec>(item, plan, out, options, cancelled);
  }
  double param0 = item.activation.params[0];
  if (is_prelu) {
    // One weight, or none at all: an input [N, 0, ...] has zero channels and no elements.
    const std::vector<double> weights = PreluWeights<Codec>(item);
    param0 = weights.empty() ? 0.0 : weights[0];
  }
  // One weight: its gradient is summed per chunk, then over chunks in chunk order, so it
  // does not depend on the thread count. Every element of grad_weight is written, also
  // for an empty input (a sum of nothing is 0).
  const bool weight_gradient = is_prelu && ComputesGradient(item.mode);
  const int64_t n = plan.sizes.elements;
  const int64_t grain = options.chunk_elements;
  std::vector<long double> partial(weight_gradient ? static_cast<size_t>((n + grain - 1) / grain)
                                                   : 0,
                                   0.0L);
  absl::Status status = ParallelFor(
      options.pool, n, grain, cancelled, [&](int64_t chunk, int64_t begin, int64_t end) {
        const double sum = RunKernel(item, out, param0, begin, end, weight_gradient);
        if (weight_gradient) partial[static_cast<size_t>(chunk)] = sum;
      });
  if (!status.ok()) return status;
  if (weight_gradient) {
    long double sum = 0;
    for (long double chunk_sum : partial) sum += chunk_sum;
    // One value, or (an empty input with per-channel weights) every channel's zero.
    const int64_t weight_values =
        static_cast<int64_t>(out.grad_weight.size() / DTypeSize(item.input.dtype));
    for (int64_t c = 0; c < weight_values; ++c) {
      Codec::Store(out.grad_weight.data(), c, static_cast<double>(sum));
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

absl::Status CheckBuffer(absl::Span<char> buffer, size_t expected, size_t index,
                         absl::string_view name) {
  if (buffer.size() == expected) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(ItemPath(index), ": the ", name, " buffer has ",
                                                 buffer.size(), " bytes, expected ",
                                                 expected));
}

}  // namespace

Engine::Engine(EngineOptions options) : options_(options) {}

absl::StatusOr<std::vector<ResultSizes>> Engine::Plan(
    absl::Span<const ComputeItem> items) const {
  absl::StatusOr<std::vector<ItemPlan>> plans = PlanBatch(items, options_);
  if (!plans.ok()) return plans.status();
  std::vector<ResultSizes> sizes;
  sizes.reserve(plans->size());
  for (const ItemPlan& plan : *plans) sizes.push_back(plan.sizes);
  return sizes;
}

absl::Status Engine::Compute(absl::Span<const ComputeItem> items,
                             absl::Span<const ItemBuffers> buffers,
                             const std::atomic<bool>* cancelled) const {
  absl::StatusOr<std::vector<ItemPlan>> plans = PlanBatch(items, options_);
  if (!plans.ok()) return plans.status();
  if (buffers.size() != items.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        buffers.size(), " result buffers for ", items.size(), " items"));
  }
  for (size_t i = 0; i < items.size(); ++i) {
    const ResultSizes& sizes = (*plans)[i].sizes;
    for (absl::Status status :
         {CheckBuffer(buffers[i].output, sizes.output_bytes, i, "output"),
          CheckBuffer(buffers[i].grad_input, sizes.grad_input_bytes, i, "grad_input"),
          CheckBuffer(buffers[i].grad_weight, sizes.grad_weight_bytes, i, "grad_weight")}) {
      if (!status.ok()) return status;
    }
  }
  for (size_t i = 0; i < items.size(); ++i) {
    const ComputeItem& item = items[i];
    const ItemPlan& plan = (*plans)[i];
    if (options_.before_item_for_testing) options_.before_item_for_testing(item, cancelled);
    // Between items too, so that a batch of many small items stops as promptly as one
    // large item does.
    if (cancelled != nullptr && cancelled->load(std::memory_order_relaxed)) {
      return absl::CancelledError("computation cancelled");
    }
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
