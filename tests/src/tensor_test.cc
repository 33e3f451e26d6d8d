// src/tensor.h: element counts with their errors, the byte-count check, and shape
// formatting.
#include "src/tensor.h"

#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace actserve {
namespace {

using ::testing::HasSubstr;

TEST(TensorTest, NumElements) {
  EXPECT_EQ(*NumElements({}), 1);  // a scalar
  EXPECT_EQ(*NumElements(std::vector<int64_t>{0}), 0);
  EXPECT_EQ(*NumElements(std::vector<int64_t>{3, 0}), 0);
  EXPECT_EQ(*NumElements(std::vector<int64_t>{2, 3, 5}), 30);
  EXPECT_EQ(*NumElements(std::vector<int64_t>{int64_t{1} << 30, 8}), int64_t{1} << 33);
  // The largest count whose bytes (x 8) still fit in int64.
  EXPECT_EQ(*NumElements(std::vector<int64_t>{int64_t{1} << 59}), int64_t{1} << 59);
}

TEST(TensorTest, NumElementsErrorsNameTheDimension) {
  absl::StatusOr<int64_t> n = NumElements(std::vector<int64_t>{2, -1});
  EXPECT_EQ(n.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(n.status().message()), HasSubstr("[2,-1]"));
  EXPECT_THAT(std::string(n.status().message()), HasSubstr("dimension 1"));
  n = NumElements(std::vector<int64_t>{int64_t{1} << 40, int64_t{1} << 40});
  EXPECT_EQ(n.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(n.status().message()), HasSubstr("dimension 1"));
  n = NumElements(std::vector<int64_t>{int64_t{1} << 61});  // bytes overflow
  EXPECT_EQ(n.status().code(), absl::StatusCode::kInvalidArgument);
  // A negative dimension after a zero one is still an error.
  n = NumElements(std::vector<int64_t>{0, -3});
  EXPECT_EQ(n.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TensorTest, CheckTensorBytesGivesTheElementCountOfAnExactTensor) {
  EXPECT_EQ(*CheckTensorBytes(DType::kFloat32, std::vector<int64_t>{2, 3}, 24), 6);
  EXPECT_EQ(*CheckTensorBytes(DType::kBFloat16, {}, 2), 1);  // a scalar
  EXPECT_EQ(*CheckTensorBytes(DType::kFloat64, std::vector<int64_t>{4, 0}, 0), 0);
}

TEST(TensorTest, CheckTensorBytesNamesWhatIsWrong) {
  absl::StatusOr<int64_t> short_data =
      CheckTensorBytes(DType::kFloat32, std::vector<int64_t>{2, 2}, 12);
  EXPECT_EQ(short_data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(short_data.status().message(), "12 bytes of data, but shape [2,2] float32 needs 16");
  EXPECT_EQ(CheckTensorBytes(DType::kFloat16, std::vector<int64_t>{3}, 8).status().message(),
            "8 bytes of data, but shape [3] float16 needs 6");
  EXPECT_EQ(CheckTensorBytes(DType::kUnspecified, std::vector<int64_t>{1}, 0).status().message(),
            "dtype unspecified is not a tensor element type");
  EXPECT_THAT(
      CheckTensorBytes(DType::kFloat64, std::vector<int64_t>{2, -1}, 0).status().message(),
      HasSubstr("dimension 1 is negative"));
}

TEST(TensorTest, ShapeToString) {
  EXPECT_EQ(ShapeToString({}), "[]");
  EXPECT_EQ(ShapeToString(std::vector<int64_t>{2, 3}), "[2,3]");
  EXPECT_EQ(ShapeToString(std::vector<int64_t>{7}), "[7]");
  EXPECT_EQ(ShapeToString(std::vector<int64_t>{2, -1}), "[2,-1]");
}

}  // namespace
}  // namespace actserve
