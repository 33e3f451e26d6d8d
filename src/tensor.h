// Non-owning views of tensors: a dtype, a row-major shape and packed little-endian bytes.
//
// The engine reads inputs through ConstTensorView and writes results into caller-provided
// MutableTensorView buffers, so a server can compute straight into the memory that
// becomes its response. Views never own memory; the caller keeps it alive for the call.
// Data pointers need no alignment: the engine reads and writes elements with memcpy.
#ifndef ACTSERVE_SRC_TENSOR_H_
#define ACTSERVE_SRC_TENSOR_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "src/dtype.h"

namespace actserve {

struct ConstTensorView {
  DType dtype = DType::kUnspecified;
  absl::Span<const int64_t> shape;  // [] is a scalar (one element)
  absl::Span<const char> data;      // exactly NumElements(shape) * DTypeSize(dtype) bytes
};

struct MutableTensorView {
  DType dtype = DType::kUnspecified;
  absl::Span<const int64_t> shape;
  absl::Span<char> data;
};

// The number of elements of `shape`: the product of its dimensions, 1 for [].
// InvalidArgument when a dimension is negative or the product (or the product times the
// largest element size, 8 bytes) overflows int64; the message names the dimension, e.g.
// "shape [2,-1]: dimension 1 is negative".
absl::StatusOr<int64_t> NumElements(absl::Span<const int64_t> shape);

// "[2,3]", "[]".
std::string ShapeToString(absl::Span<const int64_t> shape);

}  // namespace actserve

#endif  // ACTSERVE_SRC_TENSOR_H_
