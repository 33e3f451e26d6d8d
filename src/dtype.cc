#include "src/dtype.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace actserve {
namespace {

constexpr DType kAllDTypes[] = {DType::kFloat32, DType::kFloat64, DType::kFloat16,
                                DType::kBFloat16};

// A binary floating-point format narrower than double, described by the number of
// significand bits (with the implicit one) and the exponent of its smallest normal.
struct NarrowFormat {
  int significand_bits;  // 11 for binary16, 8 for bfloat16
  int exponent_bits;     // 5 for binary16, 8 for bfloat16
  int min_normal_exp;    // -14 for binary16, -126 for bfloat16: 2^min is the smallest normal
  int max_exp;           // 15 for binary16, 127 for bfloat16
};
constexpr NarrowFormat kFloat16Format = {11, 5, -14, 15};
constexpr NarrowFormat kBFloat16Format = {8, 8, -126, 127};

// Rounds `value` to `format` (nearest, ties to even) and encodes it. Works in double: the
// scaling by powers of two is exact, and std::nearbyint rounds to nearest-even in the
// default floating-point environment, so there is exactly one rounding.
uint16_t RoundToNarrow(double value, const NarrowFormat& format) {
  const int mantissa_bits = format.significand_bits - 1;
  const uint16_t exponent_mask = static_cast<uint16_t>((1u << format.exponent_bits) - 1);
  const uint16_t sign = std::signbit(value) ? static_cast<uint16_t>(1u << 15) : 0;
  const uint16_t inf_bits = static_cast<uint16_t>(exponent_mask << mantissa_bits);
  if (std::isnan(value)) {
    // A quiet NaN with the top mantissa bit set.
    return static_cast<uint16_t>(sign | inf_bits | (1u << (mantissa_bits - 1)));
  }
  const double magnitude = std::fabs(value);
  if (std::isinf(magnitude)) return static_cast<uint16_t>(sign | inf_bits);

  // The spacing of representable values at this magnitude: 2^(e - mantissa_bits) for
  // normals, fixed at the smallest normal's spacing for subnormals.
  int exponent = magnitude == 0 ? format.min_normal_exp : std::ilogb(magnitude);
  if (exponent < format.min_normal_exp) exponent = format.min_normal_exp;
  const double quantum_scale = std::ldexp(1.0, mantissa_bits - exponent);
  double units = std::nearbyint(magnitude * quantum_scale);  // exact in double
  // Rounding up can carry into the next binade (units == 2^significand_bits): the encoding
  // below handles it naturally because the mantissa overflows into the exponent field.
  const double rounded = std::ldexp(units, exponent - mantissa_bits);
  const double largest_finite =
      std::ldexp(std::ldexp(1.0, format.significand_bits) - 1, format.max_exp - mantissa_bits);
  if (rounded > largest_finite) return static_cast<uint16_t>(sign | inf_bits);
  if (rounded == 0) return sign;

  const int rounded_exp = std::ilogb(rounded);
  uint32_t biased_exp;
  uint32_t mantissa;
  if (rounded_exp < format.min_normal_exp) {
    biased_exp = 0;
    mantissa = static_cast<uint32_t>(
        std::ldexp(rounded, mantissa_bits - format.min_normal_exp));
  } else {
    const int bias = (1 << (format.exponent_bits - 1)) - 1;
    biased_exp = static_cast<uint32_t>(rounded_exp + bias);
    mantissa = static_cast<uint32_t>(std::ldexp(rounded, mantissa_bits - rounded_exp)) -
               (1u << mantissa_bits);
  }
  return static_cast<uint16_t>(sign | (biased_exp << mantissa_bits) | mantissa);
}

double DecodeNarrow(uint16_t bits, const NarrowFormat& format) {
  const int mantissa_bits = format.significand_bits - 1;
  const uint32_t exponent_mask = (1u << format.exponent_bits) - 1;
  const uint32_t biased_exp = (bits >> mantissa_bits) & exponent_mask;
  const uint32_t mantissa = bits & ((1u << mantissa_bits) - 1);
  const double sign = (bits & 0x8000) ? -1.0 : 1.0;
  if (biased_exp == exponent_mask) {
    return mantissa == 0 ? sign * std::numeric_limits<double>::infinity()
                         : std::numeric_limits<double>::quiet_NaN();
  }
  if (biased_exp == 0) {
    return sign * std::ldexp(static_cast<double>(mantissa),
                             format.min_normal_exp - mantissa_bits);
  }
  const int bias = (1 << (format.exponent_bits - 1)) - 1;
  return sign * std::ldexp(static_cast<double>(mantissa | (1u << mantissa_bits)),
                           static_cast<int>(biased_exp) - bias - mantissa_bits);
}

}  // namespace

absl::Span<const DType> AllDTypes() { return kAllDTypes; }

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return 4;
    case DType::kFloat64:
      return 8;
    case DType::kFloat16:
    case DType::kBFloat16:
      return 2;
    case DType::kUnspecified:
      break;
  }
  return 0;
}

absl::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "float32";
    case DType::kFloat64:
      return "float64";
    case DType::kFloat16:
      return "float16";
    case DType::kBFloat16:
      return "bfloat16";
    case DType::kUnspecified:
      break;
  }
  return "unspecified";
}

bool ParseDType(absl::string_view name, DType* dtype) {
  struct Alias {
    absl::string_view name;
    DType dtype;
  };
  static constexpr Alias kAliases[] = {
      {"float32", DType::kFloat32}, {"f32", DType::kFloat32},   {"float", DType::kFloat32},
      {"float64", DType::kFloat64}, {"f64", DType::kFloat64},   {"double", DType::kFloat64},
      {"float16", DType::kFloat16}, {"f16", DType::kFloat16},   {"half", DType::kFloat16},
      {"bfloat16", DType::kBFloat16}, {"bf16", DType::kBFloat16},
  };
  for (const Alias& alias : kAliases) {
    if (alias.name == name) {
      *dtype = alias.dtype;
      return true;
    }
  }
  return false;
}

uint16_t RoundToFloat16(double value) { return RoundToNarrow(value, kFloat16Format); }
uint16_t RoundToBFloat16(double value) { return RoundToNarrow(value, kBFloat16Format); }
double Float16ToDouble(uint16_t bits) { return DecodeNarrow(bits, kFloat16Format); }
double BFloat16ToDouble(uint16_t bits) { return DecodeNarrow(bits, kBFloat16Format); }

}  // namespace actserve
