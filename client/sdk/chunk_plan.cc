// See chunk_plan.h.
#include "client/sdk/chunk_plan.h"

#include <algorithm>

namespace actserve {
namespace client_internal {

ChunkPlan PlanChunks(DType dtype, absl::Span<const int64_t> shape, const ActivationSpec& spec,
                     int64_t weight_count, int64_t chunk_bytes) {
  ChunkPlan plan;
  plan.element_size = DTypeSize(dtype);
  const int64_t elements = NumElements(shape).value_or(0);
  const int64_t per_chunk_elements =
      std::max<int64_t>(1, chunk_bytes / static_cast<int64_t>(plan.element_size));
  const size_t rank = shape.size();
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
    const int64_t rows = shape[0];
    const int64_t rest = elements / rows;
    int64_t dim = softmax ? static_cast<int64_t>(spec.Param("dim")) : 1;
    if (dim < 0) dim += static_cast<int64_t>(rank);
    if (per_channel && rest > per_chunk_elements) {
      // Per-channel weights need rank >= 2 (the server checks the count against
      // dimension 1), so the [rows, channels, plane] view exists.
      plan.cut = ChunkPlan::Cut::kPlanes;
      plan.channels = shape[1];
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

ChunkGeometry ChunkAt(const ChunkPlan& plan, absl::Span<const int64_t> shape, size_t chunk) {
  ChunkGeometry g;
  const int64_t first = static_cast<int64_t>(chunk) * plan.per_chunk;
  const int64_t count = std::min(plan.per_chunk, plan.units - first);
  switch (plan.cut) {
    case ChunkPlan::Cut::kWhole:
      g.shape.assign(shape.begin(), shape.end());
      g.bytes = static_cast<size_t>(NumElements(shape).value_or(0)) * plan.element_size;
      break;
    case ChunkPlan::Cut::kFlat:
      g.shape = {count};
      g.offset = static_cast<size_t>(first) * plan.element_size;
      g.bytes = static_cast<size_t>(count) * plan.element_size;
      break;
    case ChunkPlan::Cut::kRows:
      g.shape.assign(shape.begin(), shape.end());
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
      g.shape = {shape[0], count};
      g.gathered = true;
      g.first_column = first;
      g.columns = count;
      g.bytes = static_cast<size_t>(count * plan.unit_elements) * plan.element_size;
      break;
  }
  return g;
}

}  // namespace client_internal
}  // namespace actserve
