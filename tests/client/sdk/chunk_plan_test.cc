// PlanChunks / ChunkAt: how ComputeChunked cuts a tensor, checked against plans worked out
// by hand, and, for every contiguous plan, that the chunks tile the tensor's bytes in
// order with nothing left out or sent twice.
#include "client/sdk/chunk_plan.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "actserve/types.h"

namespace actserve {
namespace client_internal {
namespace {

using Cut = ChunkPlan::Cut;
using Shape = std::vector<int64_t>;

ActivationSpec Spec(const char* text) {
  absl::StatusOr<ActivationSpec> spec = ParseActivationSpec(text);
  EXPECT_TRUE(spec.ok()) << spec.status();
  return *spec;
}

// Every chunk of a contiguous plan starts where the previous one ended, and together
// they cover the tensor's `total_bytes`.
void ExpectContiguousTiling(const ChunkPlan& plan, const Shape& shape, size_t total_bytes) {
  size_t next = 0;
  for (size_t chunk = 0; chunk < plan.chunks; ++chunk) {
    const ChunkGeometry g = ChunkAt(plan, shape, chunk);
    EXPECT_FALSE(g.gathered) << chunk;
    EXPECT_EQ(g.offset, next) << chunk;
    int64_t elements = 1;
    for (int64_t dim : g.shape) elements *= dim;
    EXPECT_EQ(g.bytes, static_cast<size_t>(elements) * plan.element_size) << chunk;
    next += g.bytes;
  }
  EXPECT_EQ(next, total_bytes);
}

TEST(ChunkPlanTest, ElementwiseIsCutIntoFlatRuns) {
  // 100 float32 elements, 28 bytes (7 elements) per chunk: 14 chunks of 7 and one of 2.
  const Shape shape = {10, 10};
  const ChunkPlan plan = PlanChunks(DType::kFloat32, shape, Spec("relu"), 1, 28);
  EXPECT_EQ(plan.cut, Cut::kFlat);
  EXPECT_EQ(plan.chunks, 15u);
  const ChunkGeometry last = ChunkAt(plan, shape, 14);
  EXPECT_EQ(last.shape, (Shape{2}));
  EXPECT_EQ(last.offset, 98u * 4);
  EXPECT_EQ(last.bytes, 8u);
  ExpectContiguousTiling(plan, shape, 400);
}

TEST(ChunkPlanTest, PreluWithOneWeightIsElementwise) {
  const Shape shape = {4, 3, 5};
  const ChunkPlan plan = PlanChunks(DType::kFloat64, shape, Spec("prelu"), 1, 80);
  EXPECT_EQ(plan.cut, Cut::kFlat);
  EXPECT_EQ(plan.chunks, 6u);  // 60 elements, 10 per chunk
  ExpectContiguousTiling(plan, shape, 480);
}

TEST(ChunkPlanTest, SoftmaxAlongALaterDimensionKeepsWholeRows) {
  // 4096 bytes hold 1024 elements: 341 rows of 3 per chunk, the last chunk 318 rows.
  const Shape shape = {1000, 3};
  const ChunkPlan plan = PlanChunks(DType::kFloat32, shape, Spec("softmax(dim=1)"), 1, 4096);
  EXPECT_EQ(plan.cut, Cut::kRows);
  EXPECT_EQ(plan.chunks, 3u);
  const ChunkGeometry last = ChunkAt(plan, shape, 2);
  EXPECT_EQ(last.shape, (Shape{318, 3}));
  EXPECT_EQ(last.offset, 682u * 12);
  EXPECT_EQ(last.bytes, 318u * 12);
  ExpectContiguousTiling(plan, shape, 12000);
}

TEST(ChunkPlanTest, ARowLargerThanAChunkIsStillOneChunk) {
  const Shape shape = {3, 100};
  const ChunkPlan plan =
      PlanChunks(DType::kFloat32, shape, Spec("log_softmax(dim=-1)"), 1, 40);
  EXPECT_EQ(plan.cut, Cut::kRows);
  EXPECT_EQ(plan.chunks, 3u);
  EXPECT_EQ(ChunkAt(plan, shape, 1).shape, (Shape{1, 100}));
  ExpectContiguousTiling(plan, shape, 1200);
}

TEST(ChunkPlanTest, SoftmaxAlongDimensionZeroGathersBlocksOfColumns) {
  // [4, 6] float64, 64 bytes = 8 elements = 2 columns of 4 rows per chunk: 3 chunks.
  const Shape shape = {4, 6};
  for (const char* text : {"softmax(dim=0)", "log_softmax(dim=-2)"}) {
    const ChunkPlan plan = PlanChunks(DType::kFloat64, shape, Spec(text), 1, 64);
    EXPECT_EQ(plan.cut, Cut::kColumns) << text;
    EXPECT_EQ(plan.chunks, 3u) << text;
    EXPECT_EQ(plan.row_elements, 6) << text;
    const ChunkGeometry g = ChunkAt(plan, shape, 1);
    EXPECT_TRUE(g.gathered);
    EXPECT_EQ(g.shape, (Shape{4, 2}));
    EXPECT_EQ(g.first_column, 2);
    EXPECT_EQ(g.columns, 2);
    EXPECT_EQ(g.bytes, 64u);
  }
}

TEST(ChunkPlanTest, OneDimensionalSoftmaxIsOneChunk) {
  const Shape shape = {100};
  const ChunkPlan plan = PlanChunks(DType::kFloat32, shape, Spec("softmax(dim=0)"), 1, 16);
  EXPECT_EQ(plan.cut, Cut::kWhole);
  EXPECT_EQ(plan.chunks, 1u);
  const ChunkGeometry g = ChunkAt(plan, shape, 0);
  EXPECT_EQ(g.shape, shape);
  EXPECT_EQ(g.bytes, 400u);
}

TEST(ChunkPlanTest, EmptyTensorsAndScalarsAreOneChunk) {
  for (const Shape& shape : {Shape{0, 5}, Shape{}}) {
    const ChunkPlan plan = PlanChunks(DType::kBFloat16, shape, Spec("gelu"), 1, 2);
    EXPECT_EQ(plan.cut, Cut::kWhole);
    EXPECT_EQ(plan.chunks, 1u);
    const ChunkGeometry g = ChunkAt(plan, shape, 0);
    EXPECT_EQ(g.shape, shape);
    EXPECT_EQ(g.bytes, shape.empty() ? 2u : 0u);
  }
}

TEST(ChunkPlanTest, PerChannelPreluKeepsWholeRowsWhenARowFits) {
  // [8, 3, 4] float32: a row is 12 elements; 96 bytes = 24 elements = 2 rows per chunk.
  const Shape shape = {8, 3, 4};
  const ChunkPlan plan = PlanChunks(DType::kFloat32, shape, Spec("prelu"), 3, 96);
  EXPECT_EQ(plan.cut, Cut::kRows);
  EXPECT_EQ(plan.chunks, 4u);
  const ChunkGeometry g = ChunkAt(plan, shape, 3);
  EXPECT_EQ(g.shape, (Shape{2, 3, 4}));
  EXPECT_EQ(g.offset, 6u * 12 * 4);
  ExpectContiguousTiling(plan, shape, 384);
}

TEST(ChunkPlanTest, PerChannelPreluCutsRowsIntoRunsOfChannelPlanes) {
  // [2, 5, 4] float32: a row (20 elements) exceeds 32 bytes = 8 elements = 2 planes of 4,
  // so each row is sent as planes {0,1}, {2,3}, {4}: 3 chunks per row, 6 in all.
  const Shape shape = {2, 5, 4};
  const ChunkPlan plan = PlanChunks(DType::kFloat32, shape, Spec("prelu"), 5, 32);
  EXPECT_EQ(plan.cut, Cut::kPlanes);
  EXPECT_FALSE(plan.split_planes);
  EXPECT_EQ(plan.chunks, 6u);
  const ChunkGeometry last_of_row = ChunkAt(plan, shape, 2);
  EXPECT_EQ(last_of_row.shape, (Shape{1, 1, 4}));
  EXPECT_EQ(last_of_row.first_weight, 4);
  EXPECT_EQ(last_of_row.weights, 1);
  EXPECT_EQ(last_of_row.offset, 16u * 4);
  const ChunkGeometry second_row = ChunkAt(plan, shape, 4);
  EXPECT_EQ(second_row.shape, (Shape{1, 2, 4}));
  EXPECT_EQ(second_row.first_weight, 2);
  EXPECT_EQ(second_row.weights, 2);
  EXPECT_EQ(second_row.offset, (20u + 8) * 4);
  EXPECT_EQ(second_row.bytes, 32u);
  ExpectContiguousTiling(plan, shape, 160);
}

TEST(ChunkPlanTest, PerChannelPreluSplitsAPlaneLargerThanAChunk) {
  // [1, 2, 10] float32, 16 bytes = 4 elements: each plane of 10 goes as 4, 4, 2.
  const Shape shape = {1, 2, 10};
  const ChunkPlan plan = PlanChunks(DType::kFloat32, shape, Spec("prelu"), 2, 16);
  EXPECT_EQ(plan.cut, Cut::kPlanes);
  EXPECT_TRUE(plan.split_planes);
  EXPECT_EQ(plan.chunks, 6u);
  const ChunkGeometry g = ChunkAt(plan, shape, 5);
  EXPECT_EQ(g.shape, (Shape{1, 1, 2}));
  EXPECT_EQ(g.first_weight, 1);
  EXPECT_EQ(g.weights, 1);
  EXPECT_EQ(g.offset, 18u * 4);
  EXPECT_EQ(g.bytes, 8u);
  ExpectContiguousTiling(plan, shape, 80);
}

}  // namespace
}  // namespace client_internal
}  // namespace actserve
