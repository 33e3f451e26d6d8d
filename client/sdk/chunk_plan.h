// How ComputeChunked cuts one tensor into the messages of a ComputeStream call: a pure
// function of the tensor's dtype and shape, the activation, the PReLU weight count and
// the chunk size, with no I/O, so that the plan can be tested on its own
// (tests/client/sdk/chunk_plan_test.cc) and the transfer (chunked.h) only follows it.
//
//   const int64_t shape[] = {1000, 3};
//   ChunkPlan plan = PlanChunks(DType::kFloat32, shape, *ParseActivationSpec("softmax(dim=1)"),
//                               /*weight_count=*/1, /*chunk_bytes=*/4096);
//   plan.cut;     // ChunkPlan::Cut::kRows: softmax along dim 1 keeps whole rows
//   plan.chunks;  // 3: 341 rows of 12 bytes per chunk
//   ChunkGeometry g = ChunkAt(plan, shape, 2);  // rows 682..999: shape [318,3]
//
// Internal to the SDK (not installed). Thread-safe: plain values.
#ifndef ACTSERVE_CLIENT_SDK_CHUNK_PLAN_H_
#define ACTSERVE_CLIENT_SDK_CHUNK_PLAN_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "actserve/types.h"

namespace actserve {
namespace client_internal {

// How a tensor is cut. Chunks of kFlat, kRows, kPlanes and kWhole are contiguous byte
// ranges of the tensor; chunks of kColumns are gathered (and their results scattered) row
// by row.
//
// Elementwise activations, and PReLU with a single weight, are cut in flat runs of
// elements (kFlat), whatever the shape. Softmax / log_softmax along a dimension other
// than 0 keep whole rows of dimension 0 (kRows); along dimension 0 they are cut into
// blocks of columns of the [shape[0], rest] view (kColumns), each column being its own
// reduction; a 1-D softmax is one chunk (kWhole). PReLU with one weight per channel
// (dimension 1 of [N, C, rest...]) is cut by rows when a row fits a chunk; otherwise by
// kPlanes: runs of whole channel planes of one row, sent as [1, k, plane] with the k
// weights they use, or, when one plane is itself larger than a chunk, runs within a
// plane, sent as [1, 1, m] with that plane's weight. Each chunk's grad_weight then adds
// to the weights it used. An empty tensor or a scalar is one chunk (kWhole).
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

// One chunk's shape and place in the whole tensor.
struct ChunkGeometry {
  std::vector<int64_t> shape;
  bool gathered = false;  // kColumns: the chunk's rows are not contiguous in the tensor
  size_t offset = 0;      // bytes, contiguous chunks
  size_t bytes = 0;
  int64_t first_column = 0, columns = 0;  // kColumns
  // kPlanes: the PReLU weights this chunk uses, [first_weight, first_weight + weights).
  int64_t first_weight = 0, weights = 0;
};

// The plan for a tensor of `dtype` and `shape` through `spec`, with `weight_count` PReLU
// weights (1 for every other activation) and at most `chunk_bytes` bytes of input per
// chunk (a single unit larger than that, e.g. one softmax row, is still one chunk).
// Preconditions, checked by the caller on the whole tensor first: DTypeSize(dtype) > 0,
// NumElements(shape) ok, chunk_bytes > 0, a per-channel weight count equal to shape[1],
// a softmax dim within the rank.
ChunkPlan PlanChunks(DType dtype, absl::Span<const int64_t> shape, const ActivationSpec& spec,
                     int64_t weight_count, int64_t chunk_bytes);

// Chunk `chunk` (0 <= chunk < plan.chunks) of the tensor of `shape` that `plan` was made
// for.
ChunkGeometry ChunkAt(const ChunkPlan& plan, absl::Span<const int64_t> shape, size_t chunk);

}  // namespace client_internal
}  // namespace actserve

#endif  // ACTSERVE_CLIENT_SDK_CHUNK_PLAN_H_
