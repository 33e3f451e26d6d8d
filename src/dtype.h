// Element types of tensors, and exact conversions between the half-precision formats and
// double.
//
// actserve computes float16 and bfloat16 in wider precision and rounds the result once,
// to nearest-even, on the way back. These conversions are that rounding.
//
//   uint16_t bits = actserve::RoundToFloat16(0.1);   // 0x2E66
//   double back = actserve::Float16ToDouble(bits);   // 0.0999755859375
#ifndef ACTSERVE_SRC_DTYPE_H_
#define ACTSERVE_SRC_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include "absl/strings/string_view.h"

#include "absl/types/span.h"

namespace actserve {

// The element types on the wire. kUnspecified is never valid in a computation; it exists
// so that a request that leaves the type out can be reported as such.
enum class DType : int {
  kUnspecified = 0,
  kFloat32 = 1,
  kFloat64 = 2,
  kFloat16 = 3,
  kBFloat16 = 4,
};

// Every valid dtype, in wire order.
absl::Span<const DType> AllDTypes();

// Bytes per element: 4, 8, 2, 2; 0 for kUnspecified.
size_t DTypeSize(DType dtype);

// "float32", "float64", "float16", "bfloat16"; "unspecified" for kUnspecified.
absl::string_view DTypeName(DType dtype);

// Parses a name as DTypeName prints it (also accepts "f32", "f64", "f16", "bf16",
// "float", "double", "half"). Returns false when the name is unknown.
bool ParseDType(absl::string_view name, DType* dtype);

// IEEE binary16 and bfloat16, as raw bits. Conversions round to nearest, ties to even,
// directly from double (one rounding, never via float), keep subnormals, overflow to
// +-Inf and keep NaN a NaN (quiet). Thread-safe, no allocation.
uint16_t RoundToFloat16(double value);
uint16_t RoundToBFloat16(double value);
double Float16ToDouble(uint16_t bits);
double BFloat16ToDouble(uint16_t bits);

}  // namespace actserve

#endif  // ACTSERVE_SRC_DTYPE_H_
