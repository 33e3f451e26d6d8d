// src/tensor.h: element counts with their errors, and shape formatting.
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

TEST(TensorTest, ShapeToString) {
  EXPECT_EQ(ShapeToString({}), "[]");
  EXPECT_EQ(ShapeToString(std::vector<int64_t>{2, 3}), "[2,3]");
  EXPECT_EQ(ShapeToString(std::vector<int64_t>{7}), "[7]");
  EXPECT_EQ(ShapeToString(std::vector<int64_t>{2, -1}), "[2,-1]");
}

}  // namespace
}  // namespace actserve
