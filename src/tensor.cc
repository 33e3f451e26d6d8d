#include "src/tensor.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace actserve {

absl::StatusOr<int64_t> NumElements(absl::Span<const int64_t> shape) {
  // Bound the product so that the byte count of the widest dtype (8 bytes) fits int64.
  constexpr int64_t kMaxElements = std::numeric_limits<int64_t>::max() / 8;
  int64_t elements = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "shape ", ShapeToString(shape), ": dimension ", i, " is negative (", shape[i], ")"));
    }
  }
  // A zero dimension makes the product zero however large the others are.
  for (int64_t dim : shape) {
    if (dim == 0) return 0;
  }
  for (size_t i = 0; i < shape.size(); ++i) {
    if (elements > kMaxElements / shape[i]) {
      return absl::InvalidArgumentError(
          absl::StrCat("shape ", ShapeToString(shape), ": more than ", kMaxElements,
                       " elements (overflow at dimension ", i, ")"));
    }
    elements *= shape[i];
  }
  return elements;
}

absl::StatusOr<int64_t> CheckTensorBytes(DType dtype, absl::Span<const int64_t> shape,
                                         size_t data_bytes) {
  if (DTypeSize(dtype) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("dtype ", DTypeName(dtype), " is not a tensor element type"));
  }
  absl::StatusOr<int64_t> elements = NumElements(shape);
  if (!elements.ok()) return elements.status();
  // NumElements bounds the count so that this product fits int64 for every dtype.
  const int64_t needed = *elements * static_cast<int64_t>(DTypeSize(dtype));
  if (static_cast<int64_t>(data_bytes) != needed) {
    return absl::InvalidArgumentError(absl::StrCat(data_bytes, " bytes of data, but shape ",
                                                   ShapeToString(shape), " ", DTypeName(dtype),
                                                   " needs ", needed));
  }
  return elements;
}

std::string ShapeToString(absl::Span<const int64_t> shape) {
  // Error messages cross the wire: a hostile shape with a million dimensions must not
  // make a message of a million numbers.
  constexpr size_t kMaxPrintedDims = 16;
  if (shape.size() <= kMaxPrintedDims) {
    return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
  }
  return absl::StrCat("[", absl::StrJoin(shape.subspan(0, kMaxPrintedDims), ","), ",... (",
                      shape.size(), " dimensions)]");
}

}  // namespace actserve
