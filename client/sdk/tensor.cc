// See actserve/tensor.h.
#include "actserve/tensor.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace actserve {
TensorView MakeTensorView(absl::Span<const float> values, absl::Span<const int64_t> shape) {
  return TensorView{
      DType::kFloat32, shape, {reinterpret_cast<const char*>(values.data()), values.size() * 4}};
}

TensorView MakeTensorView(absl::Span<const double> values, absl::Span<const int64_t> shape) {
  return TensorView{
      DType::kFloat64, shape, {reinterpret_cast<const char*>(values.data()), values.size() * 8}};
}

TensorView MakeTensorView(DType dtype, absl::Span<const uint16_t> bits,
                          absl::Span<const int64_t> shape) {
  return TensorView{dtype, shape, {reinterpret_cast<const char*>(bits.data()), bits.size() * 2}};
}

Tensor::Tensor() : dtype_(DType::kFloat32), shape_{0} {}

absl::StatusOr<Tensor> Tensor::FromBytes(DType dtype, std::vector<int64_t> shape,
                                         std::string data) {
  absl::StatusOr<int64_t> checked = CheckTensorBytes(dtype, shape, data.size());
  if (!checked.ok()) return checked.status();
  return Tensor(dtype, std::move(shape), std::move(data));
}

absl::StatusOr<Tensor> Tensor::FromView(const TensorView& view) {
  return FromBytes(view.dtype, std::vector<int64_t>(view.shape.begin(), view.shape.end()),
                   std::string(view.data.data(), view.data.size()));
}

absl::StatusOr<Tensor> Tensor::FromDoubles(DType dtype, std::vector<int64_t> shape,
                                           absl::Span<const double> values) {
  const size_t size = DTypeSize(dtype);
  // A wrong count of values is reported as such; a bad dtype or shape as the byte check
  // reports it.
  const absl::StatusOr<int64_t> elements = NumElements(shape);
  if (size > 0 && elements.ok() && values.size() != static_cast<size_t>(*elements)) {
    return absl::InvalidArgumentError(absl::StrCat(values.size(), " values, but shape ",
                                                   ShapeToString(shape), " has ", *elements,
                                                   " elements"));
  }
  absl::StatusOr<int64_t> checked = CheckTensorBytes(dtype, shape, values.size() * size);
  if (!checked.ok()) return checked.status();
  std::string data(values.size() * size, '\0');
  char* out = data.data();
  for (double value : values) {
    switch (dtype) {
      case DType::kFloat32: {
        const float narrow = static_cast<float>(value);
        std::memcpy(out, &narrow, 4);
        break;
      }
      case DType::kFloat64:
        std::memcpy(out, &value, 8);
        break;
      case DType::kFloat16: {
        const uint16_t bits = RoundToFloat16(value);
        std::memcpy(out, &bits, 2);
        break;
      }
      case DType::kBFloat16: {
        const uint16_t bits = RoundToBFloat16(value);
        std::memcpy(out, &bits, 2);
        break;
      }
      case DType::kUnspecified:
        break;  // rejected by CheckTensorBytes
    }
    out += size;
  }
  return Tensor(dtype, std::move(shape), std::move(data));
}

int64_t Tensor::num_elements() const {
  const size_t size = DTypeSize(dtype_);
  return size == 0 ? 0 : static_cast<int64_t>(data_.size() / size);
}

std::vector<double> Tensor::ToDoubles() const {
  std::vector<double> values;
  values.reserve(static_cast<size_t>(num_elements()));
  const char* in = data_.data();
  for (int64_t i = 0; i < num_elements(); ++i) {
    switch (dtype_) {
      case DType::kFloat32: {
        float value;
        std::memcpy(&value, in, 4);
        values.push_back(value);
        in += 4;
        break;
      }
      case DType::kFloat64: {
        double value;
        std::memcpy(&value, in, 8);
        values.push_back(value);
        in += 8;
        break;
      }
      case DType::kFloat16:
      case DType::kBFloat16: {
        uint16_t bits;
        std::memcpy(&bits, in, 2);
        values.push_back(dtype_ == DType::kFloat16 ? Float16ToDouble(bits)
                                                   : BFloat16ToDouble(bits));
        in += 2;
        break;
      }
      case DType::kUnspecified:
        return {};
    }
  }
  return values;
}

std::string Tensor::ReleaseData() && {
  std::string data = std::move(data_);
  data_.clear();
  shape_ = {0};
  return data;
}

}  // namespace actserve
