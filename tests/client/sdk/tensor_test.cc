#include "actserve/tensor.h"

#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace actserve {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ClientTensorTest, FromBytesChecksTheSize) {
  absl::StatusOr<Tensor> ok = Tensor::FromBytes(DType::kFloat32, {2, 2}, std::string(16, '\0'));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->num_elements(), 4);
  absl::StatusOr<Tensor> short_data =
      Tensor::FromBytes(DType::kFloat32, {2, 2}, std::string(12, '\0'));
  EXPECT_EQ(short_data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(short_data.status().message(),
              HasSubstr("12 bytes of data, but shape [2,2] float32 needs 16"));
  EXPECT_EQ(Tensor::FromBytes(DType::kUnspecified, {1}, "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Tensor::FromBytes(DType::kFloat64, {-1}, "").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ClientTensorTest, ScalarAndEmptyShapes) {
  absl::StatusOr<Tensor> scalar = Tensor::FromDoubles(DType::kFloat64, {}, {2.5});
  ASSERT_TRUE(scalar.ok()) << scalar.status();
  EXPECT_EQ(scalar->num_elements(), 1);
  EXPECT_THAT(scalar->ToDoubles(), ElementsAre(2.5));
  absl::StatusOr<Tensor> empty = Tensor::FromDoubles(DType::kFloat32, {3, 0}, {});
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->num_elements(), 0);
  EXPECT_TRUE(empty->data().empty());
}

TEST(ClientTensorTest, FromDoublesRoundsToNearestEven) {
  // 0.1 in binary16 is 0x2E66 (0.0999755859375); in bfloat16 0x3DCD (0.10009765625).
  absl::StatusOr<Tensor> half = Tensor::FromDoubles(DType::kFloat16, {2}, {0.1, -2.0});
  ASSERT_TRUE(half.ok()) << half.status();
  EXPECT_THAT(half->Values<uint16_t>(), ElementsAre(0x2E66, 0xC000));
  EXPECT_THAT(half->ToDoubles(), ElementsAre(0.0999755859375, -2.0));
  absl::StatusOr<Tensor> bf16 = Tensor::FromDoubles(DType::kBFloat16, {1}, {0.1});
  ASSERT_TRUE(bf16.ok()) << bf16.status();
  EXPECT_THAT(bf16->Values<uint16_t>(), ElementsAre(0x3DCD));
  absl::StatusOr<Tensor> f32 = Tensor::FromDoubles(DType::kFloat32, {1}, {0.1});
  ASSERT_TRUE(f32.ok()) << f32.status();
  EXPECT_THAT(f32->Values<float>(), ElementsAre(0.1f));
  EXPECT_TRUE(f32->Values<double>().empty());  // wrong element type
}

TEST(ClientTensorTest, FromDoublesChecksTheCount) {
  absl::StatusOr<Tensor> t = Tensor::FromDoubles(DType::kFloat32, {2, 2}, {1.0, 2.0});
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("2 values, but shape [2,2] has 4 elements"));
}

TEST(ClientTensorTest, ViewsPointAtTheCallersMemory) {
  std::vector<float> values = {1, 2, 3, 4, 5, 6};
  const int64_t shape[] = {2, 3};
  TensorView view = MakeTensorView(values, shape);
  EXPECT_EQ(view.dtype, DType::kFloat32);
  EXPECT_EQ(view.data.data(), reinterpret_cast<const char*>(values.data()));
  EXPECT_EQ(view.data.size(), 24u);
  absl::StatusOr<Tensor> copy = Tensor::FromView(view);
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_THAT(copy->shape(), ElementsAre(2, 3));
  EXPECT_THAT(copy->Values<float>(), ElementsAre(1, 2, 3, 4, 5, 6));

  std::vector<uint16_t> bits = {0x3C00};
  const int64_t one[] = {1};
  absl::StatusOr<Tensor> half = Tensor::FromView(MakeTensorView(DType::kFloat16, bits, one));
  ASSERT_TRUE(half.ok()) << half.status();
  EXPECT_THAT(half->ToDoubles(), ElementsAre(1.0));
}

TEST(ClientTensorTest, ReleaseDataMovesTheBytes) {
  absl::StatusOr<Tensor> t = Tensor::FromDoubles(DType::kFloat64, {1}, {3.0});
  ASSERT_TRUE(t.ok());
  std::string bytes = std::move(*t).ReleaseData();
  EXPECT_EQ(bytes.size(), 8u);
  EXPECT_EQ(t->num_elements(), 0);
}

}  // namespace
}  // namespace actserve
