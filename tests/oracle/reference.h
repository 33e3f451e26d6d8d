// The long-double oracle as the engine's tests use it: every activation at one element
// (the formulas of tests/oracle/activation_math.h, with a per-channel PReLU weight),
// softmax / log_softmax along any dimension of a tensor, and exact functions for the
// storage formats (rounding, ULP distances, 16-bit encodings). Test-only, and
// independent of src/ (it never calls the engine or the kernels).
//
//   actserve::ref::Forward(spec, 0.5L);        // the activation's value at 0.5
//   actserve::ref::Backward(spec, 0.5L, 2.0L); // dx = 2 * f'(0.5)
//
// Conventions (DESIGN.md section 3): kinks take the table's value; +-Inf gives the
// mathematical limit of f and f'; a NaN input gives NaN in both, for every activation.
// Nothing here is thread-unsafe; nothing allocates except the softmax reference.
#ifndef ACTSERVE_TESTS_ORACLE_REFERENCE_H_
#define ACTSERVE_TESTS_ORACLE_REFERENCE_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "src/activation_spec.h"
#include "src/dtype.h"

namespace actserve {
namespace ref {

// Forward y = f(x) of an elementwise activation (not softmax / log_softmax). For PReLU,
// `prelu_weight` is the weight of x's channel; the overload without it uses
// spec.Param("weight").
long double Forward(const ActivationSpec& spec, long double x);
long double Forward(const ActivationSpec& spec, long double x, long double prelu_weight);

// Backward dx = g * f'(x) of an elementwise activation, with the table's kink values.
long double Backward(const ActivationSpec& spec, long double x, long double g);
long double Backward(const ActivationSpec& spec, long double x, long double g,
                     long double prelu_weight);

// Softmax / log_softmax (spec.kind) of a whole row-major tensor along `dim` (already
// normalised to [0, rank)), in long double. `g` may be empty (dy = 1).
struct SoftmaxResult {
  std::vector<long double> y;
  std::vector<long double> dx;
};
SoftmaxResult Softmax(const ActivationSpec& spec, absl::Span<const int64_t> shape, int dim,
                      absl::Span<const long double> x, absl::Span<const long double> g);

// A binary floating-point format: `precision` significand bits (with the implicit one),
// normal exponents in [min_exp, max_exp].
struct Format {
  int precision;
  int min_exp;
  int max_exp;
};
Format FormatOf(DType dtype);

// Rounds `x` to the nearest value of `format`, ties to even, with subnormals, overflow to
// +-Inf; NaN, Inf and zeros pass through. One rounding from long double.
long double RoundTo(Format format, long double x);
inline long double RoundTo(DType dtype, long double x) { return RoundTo(FormatOf(dtype), x); }

// The distance between two values of `format` counted in representable steps (ULPs);
// +0 and -0 are the same point. Both must be values of the format and not NaN.
int64_t UlpDistance(Format format, long double a, long double b);

// The spacing of `format` at |x| (the ULP of x): 2^(exponent - precision + 1), never less
// than the smallest subnormal.
long double Ulp(Format format, long double x);

// Exact encodings of the 16-bit formats, by bit manipulation (independent of src/dtype).
// Encode* takes a value already representable in the format (or NaN / Inf).
uint16_t EncodeHalf(long double value);
long double DecodeHalf(uint16_t bits);
uint16_t EncodeBFloat16(long double value);
long double DecodeBFloat16(uint16_t bits);

// Packs values (each already representable in `dtype`) into little-endian bytes, and back.
std::vector<char> Pack(DType dtype, absl::Span<const long double> values);
std::vector<long double> Unpack(DType dtype, absl::Span<const char> bytes);

}  // namespace ref
}  // namespace actserve

#endif  // ACTSERVE_TESTS_ORACLE_REFERENCE_H_
