// The compute engine: validates a batch of items and computes, per item, the activation's
// output, the input gradient (dx = dy * f'(x)) and, for PReLU, the weight gradient.
//
// The engine knows nothing of the network. It reads inputs through views and writes into
// caller-provided buffers, so a server can compute straight into the memory that becomes
// its response. A batch is all-or-nothing: everything is validated before anything is
// written, and the first problem is returned as InvalidArgument naming its place, e.g.
// "items[2].input: 12 bytes of data, but shape [2,2] float32 needs 16".
//
//   Engine engine(EngineOptions{});
//   ComputeItem item;
//   item.input = {DType::kFloat32, shape, bytes};
//   item.activation = *ParseActivationSpec("gelu");
//   absl::StatusOr<std::vector<ItemResult>> results = engine.ComputeToStrings({&item, 1});
//
// Semantics are PyTorch's (torch.nn.functional), with the kink conventions of DESIGN.md
// section 3; a NaN input gives NaN in the output and in the gradient for every activation.
// float32 and float64 are computed natively; float16 and bfloat16 are computed in wider
// precision and rounded once to nearest-even.
#ifndef ACTSERVE_SRC_ENGINE_H_
#define ACTSERVE_SRC_ENGINE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "src/activation_spec.h"
#include "src/compute_item.h"
#include "src/tensor.h"
#include "src/thread_pool.h"

namespace actserve {

// The byte sizes an item's results need; 0 for a result its mode does not produce.
struct ResultSizes {
  int64_t elements = 0;           // of the input
  size_t output_bytes = 0;        // == input bytes when ComputesOutput(mode)
  size_t grad_input_bytes = 0;    // == input bytes when ComputesGradient(mode)
  size_t grad_weight_bytes = 0;   // PReLU with a gradient: weight elements * dtype size
  int64_t grad_weight_elements = 0;
  // Memory the computation allocates for itself beyond the results (PReLU's widened
  // weights and weight-gradient partial sums), in bytes; O(weights + chunks).
  size_t working_bytes = 0;
};

// Caller-provided memory for one item's results; each span must have exactly the size
// ResultSizes gives (an empty span where that size is 0). Buffers may alias the item's
// own input or grad_output (the engine reads each element before writing it), but not
// each other.
struct ItemBuffers {
  absl::Span<char> output;
  absl::Span<char> grad_input;
  absl::Span<char> grad_weight;
};

// One item's results in owned memory, ready to be moved into a response.
struct ItemResult {
  std::string output;       // empty when the mode gives no output
  std::string grad_input;   // empty when the mode gives no gradient
  std::string grad_weight;  // PReLU with a gradient only
};

struct EngineOptions {
  // Most input elements in one batch, summed over its items; more is ResourceExhausted.
  // 0: unlimited. Default: 64 Mi elements (256 MiB of float32).
  int64_t max_elements = int64_t{1} << 26;
  // Most items in one batch; more is ResourceExhausted. 0: unlimited. Each item costs
  // bookkeeping (validation, buffers, a result header) whatever its size, so a count
  // limit keeps a batch of empty items cheap. Default 16384.
  int64_t max_items = 16384;
  // Most dimensions of any tensor (input, grad_output, PReLU weight); more is
  // ResourceExhausted. 0: unlimited. Default 32, as numpy's NPY_MAXDIMS before 2.0.
  int max_rank = 32;
  // Workers that share a large item's chunks with the calling thread; not owned, must
  // outlive the engine. nullptr: every computation runs on the calling thread.
  ThreadPool* pool = nullptr;
  // Elements per chunk of work: the unit of parallelism and of cancellation checks.
  // 64 Ki elements (256 KiB of float32 per stream) keep a chunk's streams in L2. Results
  // are bit-identical for any thread count because chunks are fixed by this size alone.
  int64_t chunk_elements = int64_t{1} << 16;
  // Called with each item and its call's cancellation flag (nullptr: none) just before
  // the item is computed, on the computing thread. For tests only: it lets a test hold a
  // computation until its call is cancelled, so that deadline and cancellation tests do
  // not depend on how fast the kernels are. Empty: nothing is called.
  std::function<void(const ComputeItem&, const std::atomic<bool>*)> before_item_for_testing;
};

// Thread-safe: one Engine serves any number of concurrent calls. Holds no per-call state.
class Engine {
 public:
  explicit Engine(EngineOptions options);
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const EngineOptions& options() const { return options_; }

  // Validates every item and returns the sizes of their results. InvalidArgument for any
  // malformed item (dtype unspecified, bad shape, data size, grad_output or weight that
  // does not match, parameters out of range, softmax dim out of range), naming
  // "items[i]..." and what was expected; ResourceExhausted when the batch has more than
  // options().max_items items or options().max_elements input elements, or a tensor more
  // than options().max_rank dimensions.
  absl::StatusOr<std::vector<ResultSizes>> Plan(absl::Span<const ComputeItem> items) const;

  // Validates (as Plan does, plus the buffers' sizes) and then computes every item into
  // `buffers[i]`, splitting large items into chunks run on options().pool. When
  // `cancelled` is given and becomes true, stops between chunks of work and returns
  // Cancelled; buffers then hold partial results.
  absl::Status Compute(absl::Span<const ComputeItem> items,
                       absl::Span<const ItemBuffers> buffers,
                       const std::atomic<bool>* cancelled = nullptr) const;

  // Plan + allocate + Compute: results in owned strings.
  absl::StatusOr<std::vector<ItemResult>> ComputeToStrings(
      absl::Span<const ComputeItem> items,
      const std::atomic<bool>* cancelled = nullptr) const;

 private:
  EngineOptions options_;
};

}  // namespace actserve

#endif  // ACTSERVE_SRC_ENGINE_H_
