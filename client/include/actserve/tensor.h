// Tensors for the actserve C++ SDK: an owning `Tensor` for results, and `TensorView`s
// over the caller's own memory for inputs.
//
// A tensor is a dtype, a row-major shape and packed little-endian bytes, exactly as on
// the wire (DESIGN.md section 2). float16 and bfloat16 elements are carried as their raw
// 16-bit patterns (`uint16_t`); `Tensor::FromDoubles` and `Tensor::ToDoubles` convert.
//
//   std::vector<float> x = {-2, -1, 0, 1, 2};
//   int64_t shape[] = {5};
//   actserve::TensorView view = actserve::MakeTensorView(x, shape);   // no copy
//   absl::StatusOr<actserve::Tensor> t = actserve::Tensor::FromView(view);  // a copy
//   t->ToDoubles();  // {-2, -1, 0, 1, 2}
#ifndef ACTSERVE_CLIENT_INCLUDE_ACTSERVE_TENSOR_H_
#define ACTSERVE_CLIENT_INCLUDE_ACTSERVE_TENSOR_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/config.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "actserve/types.h"

// Views hand the host's bytes to the wire as they are, and the wire is little-endian.
#ifndef ABSL_IS_LITTLE_ENDIAN
#error "the actserve SDK needs a little-endian host"
#endif

namespace actserve {

// A non-owning view of a tensor: dtype, shape and packed bytes, all in caller memory that
// must stay alive while the view is used. The same type the compute core reads.
using TensorView = ConstTensorView;

// Views of typed values. `values` and `shape` are not copied and must outlive the view.
// The element count is not checked here; a mismatch between `values.size()` and `shape`
// is reported as InvalidArgument by whatever consumes the view (`Batch::Add`,
// `Tensor::FromView`).
TensorView MakeTensorView(absl::Span<const float> values, absl::Span<const int64_t> shape);
TensorView MakeTensorView(absl::Span<const double> values, absl::Span<const int64_t> shape);
// `bits` are float16 or bfloat16 patterns, as `dtype` says (any other dtype gives a view
// whose byte count is wrong for its dtype, which consumers reject).
TensorView MakeTensorView(DType dtype, absl::Span<const uint16_t> bits,
                          absl::Span<const int64_t> shape);

// An owning tensor. A value type: copyable (a deep copy) and cheaply movable. Not
// thread-safe for concurrent mutation; concurrent const use is fine.
class Tensor {
 public:
  // An empty float32 tensor of shape [0].
  Tensor();

  // Takes `data` as the packed bytes of `dtype` elements in `shape`. InvalidArgument when
  // `dtype` is kUnspecified, a dimension is negative, or `data` does not hold exactly
  // NumElements(shape) * DTypeSize(dtype) bytes; the message says which.
  static absl::StatusOr<Tensor> FromBytes(DType dtype, std::vector<int64_t> shape,
                                          std::string data);

  // A copy of `view`, checked as FromBytes checks.
  static absl::StatusOr<Tensor> FromView(const TensorView& view);

  // `values` rounded to `dtype` (to nearest-even; exact for float64), in `shape`.
  // InvalidArgument as FromBytes, and when `values.size()` is not the element count.
  static absl::StatusOr<Tensor> FromDoubles(DType dtype, std::vector<int64_t> shape,
                                            absl::Span<const double> values);

  DType dtype() const { return dtype_; }
  absl::Span<const int64_t> shape() const { return shape_; }
  // The packed little-endian bytes.
  const std::string& data() const { return data_; }
  // The number of elements: the product of the shape (1 for a scalar).
  int64_t num_elements() const;
  // A view of this tensor, valid while the tensor lives and is not modified.
  TensorView view() const { return TensorView{dtype_, shape_, data_}; }

  // Every element widened to double, in row-major order. Exact for every dtype.
  std::vector<double> ToDoubles() const;

  // The elements as `T`, which must match the dtype: float for float32, double for
  // float64, uint16_t (the bit patterns) for float16 and bfloat16. Returns an empty vector
  // when `T` does not match the dtype's size.
  template <typename T>
  std::vector<T> Values() const;

  // Gives up the bytes without copying them; the tensor is left empty.
  std::string ReleaseData() &&;

  friend bool operator==(const Tensor& a, const Tensor& b) {
    return a.dtype_ == b.dtype_ && a.shape_ == b.shape_ && a.data_ == b.data_;
  }
  friend bool operator!=(const Tensor& a, const Tensor& b) { return !(a == b); }

 private:
  Tensor(DType dtype, std::vector<int64_t> shape, std::string data)
      : dtype_(dtype), shape_(std::move(shape)), data_(std::move(data)) {}

  DType dtype_;
  std::vector<int64_t> shape_;
  std::string data_;
};

// Implementation details only below here.

template <typename T>
std::vector<T> Tensor::Values() const {
  if (sizeof(T) != DTypeSize(dtype_)) return {};
  std::vector<T> values(data_.size() / sizeof(T));
  if (!values.empty()) std::memcpy(values.data(), data_.data(), values.size() * sizeof(T));
  return values;
}

}  // namespace actserve

#endif  // ACTSERVE_CLIENT_INCLUDE_ACTSERVE_TENSOR_H_
