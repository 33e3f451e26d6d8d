#include "tests/oracle/reference.h"

#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>

#include "tests/oracle/activation_math.h"

namespace actserve {
namespace ref {
namespace {

using LD = long double;

constexpr LD kNaN = std::numeric_limits<LD>::quiet_NaN();
constexpr LD kInf = std::numeric_limits<LD>::infinity();

// The spec with PReLU's weight set to that of x's channel (the formulas read params[0]).
ActivationSpec WithPreluWeight(const ActivationSpec& spec, LD prelu_weight) {
  ActivationSpec with_weight = spec;
  if (spec.kind == ActivationKind::kPrelu) with_weight.params[0] = static_cast<double>(prelu_weight);
  return with_weight;
}

}  // namespace

long double Forward(const ActivationSpec& spec, long double x) {
  const LD w = spec.kind == ActivationKind::kPrelu ? spec.Param("weight") : 0;
  return Forward(spec, x, w);
}

long double Backward(const ActivationSpec& spec, long double x, long double g) {
  const LD w = spec.kind == ActivationKind::kPrelu ? spec.Param("weight") : 0;
  return Backward(spec, x, g, w);
}

long double Forward(const ActivationSpec& spec, long double x, long double prelu_weight) {
  assert(spec.kind != ActivationKind::kSoftmax && spec.kind != ActivationKind::kLogSoftmax);
  return math::Forward<long double>(WithPreluWeight(spec, prelu_weight), x);
}

long double Backward(const ActivationSpec& spec, long double x, long double g,
                     long double prelu_weight) {
  assert(spec.kind != ActivationKind::kSoftmax && spec.kind != ActivationKind::kLogSoftmax);
  return math::Backward<long double>(WithPreluWeight(spec, prelu_weight), x, g);
}

SoftmaxResult Softmax(const ActivationSpec& spec, absl::Span<const int64_t> shape, int dim,
                      absl::Span<const long double> x, absl::Span<const long double> g) {
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < dim; ++i) outer *= shape[i];
  for (size_t i = dim + 1; i < shape.size(); ++i) inner *= shape[i];
  const int64_t n = shape.empty() ? 1 : shape[dim];
  const bool log_form = spec.kind == ActivationKind::kLogSoftmax;
  SoftmaxResult r;
  r.y.assign(x.size(), 0);
  r.dx.assign(x.size(), 0);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t in = 0; in < inner; ++in) {
      auto at = [&](int64_t k) { return (o * n + k) * inner + in; };
      LD max = -kInf;
      bool nan = false;
      for (int64_t k = 0; k < n; ++k) {
        const LD v = x[at(k)];
        if (std::isnan(v)) nan = true;
        if (v > max) max = v;
      }
      LD sum = 0;
      for (int64_t k = 0; k < n; ++k) sum += expl(x[at(k)] - max);
      const LD log_sum = logl(sum);
      for (int64_t k = 0; k < n; ++k) {
        const LD d = x[at(k)] - max;  // NaN when max is +-Inf: PyTorch's NaN slice
        r.y[at(k)] = nan ? kNaN : log_form ? d - log_sum : expl(d) / sum;
      }
      LD dot = 0;  // softmax: sum(g * y); log_softmax: sum(g)
      for (int64_t k = 0; k < n; ++k) {
        const LD gk = g.empty() ? 1 : g[at(k)];
        dot += log_form ? gk : gk * r.y[at(k)];
      }
      for (int64_t k = 0; k < n; ++k) {
        const LD gk = g.empty() ? 1 : g[at(k)];
        const LD y = r.y[at(k)];
        r.dx[at(k)] = log_form ? gk - expl(y) * dot : y * (gk - dot);
      }
    }
  }
  return r;
}

Format FormatOf(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return {24, -126, 127};
    case DType::kFloat64:
      return {53, -1022, 1023};
    case DType::kFloat16:
      return {11, -14, 15};
    case DType::kBFloat16:
      return {8, -126, 127};
    case DType::kUnspecified:
      break;
  }
  assert(false);
  return {0, 0, 0};
}

long double RoundTo(Format f, long double x) {
  if (std::isnan(x) || std::isinf(x) || x == 0) return x;
  int e;
  frexpl(x, &e);  // |x| = m 2^e, m in [0.5, 1): x's exponent is e - 1
  int exponent = e - 1;
  if (exponent < f.min_exp) exponent = f.min_exp;
  const int quantum_exp = exponent - (f.precision - 1);
  // nearbyintl rounds to nearest, ties to even (the default rounding mode).
  const LD r = ldexpl(nearbyintl(ldexpl(x, -quantum_exp)), quantum_exp);
  if (fabsl(r) >= ldexpl(1, f.max_exp + 1)) return x > 0 ? kInf : -kInf;
  return r;
}

namespace {
// Index of |v| among the non-negative values of the format (0 for 0, +Inf just past max).
LD Index(Format f, LD v) {
  v = fabsl(v);
  const LD steps_per_binade = ldexpl(1, f.precision - 1);
  if (std::isinf(v)) return (f.max_exp + 1 - f.min_exp) * steps_per_binade + steps_per_binade;
  if (v < ldexpl(1, f.min_exp)) return ldexpl(v, -(f.min_exp - f.precision + 1));
  int e;
  frexpl(v, &e);
  const int exponent = e - 1;
  return (exponent - f.min_exp) * steps_per_binade + ldexpl(v, -(exponent - f.precision + 1));
}
}  // namespace

int64_t UlpDistance(Format f, long double a, long double b) {
  const LD ia = std::signbit(a) ? -Index(f, a) : Index(f, a);
  const LD ib = std::signbit(b) ? -Index(f, b) : Index(f, b);
  const LD d = fabsl(ia - ib);
  if (d > 9e18L) return INT64_MAX;
  return static_cast<int64_t>(d);
}

long double Ulp(Format f, long double x) {
  x = fabsl(x);
  int exponent = f.min_exp;
  if (std::isfinite(x) && x >= ldexpl(1, f.min_exp)) {
    int e;
    frexpl(x, &e);
    exponent = e - 1;
  } else if (std::isinf(x)) {
    exponent = f.max_exp;
  }
  return ldexpl(1, exponent - f.precision + 1);
}

namespace {
// Encodes a representable value of a format with `exp_bits` exponent bits and
// `mant_bits` stored mantissa bits as a 16-bit pattern.
uint16_t Encode16(LD v, int exp_bits, int mant_bits) {
  const int bias = (1 << (exp_bits - 1)) - 1;
  const uint16_t sign = std::signbit(v) ? 0x8000 : 0;
  const uint16_t exp_all = static_cast<uint16_t>(((1 << exp_bits) - 1) << mant_bits);
  if (std::isnan(v)) return static_cast<uint16_t>(exp_all | (1 << (mant_bits - 1)));
  v = fabsl(v);
  if (std::isinf(v)) return sign | exp_all;
  if (v == 0) return sign;
  const int min_exp = 1 - bias;
  if (v < ldexpl(1, min_exp)) {
    const LD m = ldexpl(v, -(min_exp - mant_bits));
    return sign | static_cast<uint16_t>(m);
  }
  int e;
  frexpl(v, &e);
  const int exponent = e - 1;
  const LD m = ldexpl(v, -(exponent - mant_bits)) - ldexpl(1, mant_bits);
  return sign | static_cast<uint16_t>((exponent + bias) << mant_bits) |
         static_cast<uint16_t>(m);
}

LD Decode16(uint16_t bits, int exp_bits, int mant_bits) {
  const int bias = (1 << (exp_bits - 1)) - 1;
  const int exp_field = (bits >> mant_bits) & ((1 << exp_bits) - 1);
  const int mant = bits & ((1 << mant_bits) - 1);
  const LD sign = (bits & 0x8000) ? -1 : 1;
  if (exp_field == (1 << exp_bits) - 1) return mant ? kNaN : sign * kInf;
  if (exp_field == 0) return sign * ldexpl(mant, 1 - bias - mant_bits);
  return sign * ldexpl(mant + (1 << mant_bits), exp_field - bias - mant_bits);
}
}  // namespace

uint16_t EncodeHalf(long double value) { return Encode16(value, 5, 10); }
long double DecodeHalf(uint16_t bits) { return Decode16(bits, 5, 10); }
uint16_t EncodeBFloat16(long double value) { return Encode16(value, 8, 7); }
long double DecodeBFloat16(uint16_t bits) { return Decode16(bits, 8, 7); }

std::vector<char> Pack(DType dtype, absl::Span<const long double> values) {
  const size_t size = DTypeSize(dtype);
  std::vector<char> out(values.size() * size);
  for (size_t i = 0; i < values.size(); ++i) {
    char* p = out.data() + i * size;
    switch (dtype) {
      case DType::kFloat32: {
        const float v = static_cast<float>(values[i]);
        std::memcpy(p, &v, 4);
        break;
      }
      case DType::kFloat64: {
        const double v = static_cast<double>(values[i]);
        std::memcpy(p, &v, 8);
        break;
      }
      case DType::kFloat16: {
        const uint16_t v = EncodeHalf(values[i]);
        std::memcpy(p, &v, 2);
        break;
      }
      case DType::kBFloat16: {
        const uint16_t v = EncodeBFloat16(values[i]);
        std::memcpy(p, &v, 2);
        break;
      }
      case DType::kUnspecified:
        assert(false);
    }
  }
  return out;
}

std::vector<long double> Unpack(DType dtype, absl::Span<const char> bytes) {
  const size_t size = DTypeSize(dtype);
  std::vector<long double> out(bytes.size() / size);
  for (size_t i = 0; i < out.size(); ++i) {
    const char* p = bytes.data() + i * size;
    switch (dtype) {
      case DType::kFloat32: {
        float v;
        std::memcpy(&v, p, 4);
        out[i] = v;
        break;
      }
      case DType::kFloat64: {
        double v;
        std::memcpy(&v, p, 8);
        out[i] = v;
        break;
      }
      case DType::kFloat16: {
        uint16_t v;
        std::memcpy(&v, p, 2);
        out[i] = DecodeHalf(v);
        break;
      }
      case DType::kBFloat16: {
        uint16_t v;
        std::memcpy(&v, p, 2);
        out[i] = DecodeBFloat16(v);
        break;
      }
      case DType::kUnspecified:
        assert(false);
    }
  }
  return out;
}

}  // namespace ref
}  // namespace actserve
