#include "tests/src/reference.h"

#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>

namespace actserve {
namespace ref {
namespace {

using LD = long double;

constexpr LD kNaN = std::numeric_limits<LD>::quiet_NaN();
constexpr LD kInf = std::numeric_limits<LD>::infinity();
constexpr LD kSqrt2 = 1.41421356237309504880168872420969808L;
constexpr LD kSqrt2Pi = 2.50662827463100050241576528481104525L;
constexpr LD kPi = 3.14159265358979323846264338327950288L;
// torch.nn.SELU's constants.
constexpr LD kSeluAlpha = 1.6732632423543772848170429916717L;
constexpr LD kSeluScale = 1.0507009873554804934193349852946L;

// sigmoid(x) without cancellation or overflow on either side.
LD Sigmoid(LD x) {
  if (x >= 0) return 1 / (1 + expl(-x));
  const LD e = expl(x);
  return e / (1 + e);
}

// log(1 + exp(x)) without overflow.
LD Softplus1(LD x) {
  if (x > 0) return x + log1pl(expl(-x));
  return log1pl(expl(x));
}

// 1 - tanh(t)^2 = 1 / cosh(t)^2, without the cancellation of 1 - t^2.
LD Sech2(LD t) {
  const LD c = coshl(t);
  return 1 / (c * c);
}

// x - tanh(x). Near 0 the subtraction cancels (x - tanh x ~ x^3/3), so below 1/4 the
// Taylor series of tanh is summed instead; its coefficients come from t' = 1 - t^2.
LD Tanhshrink(LD x) {
  if (fabsl(x) >= 0.25L) return x - tanhl(x);
  constexpr int kTerms = 24;  // ratio of terms ~ (2x/pi)^2 <= 0.026: 1e-38 after 24
  static const auto* coef = [] {
    // a[k] is the coefficient of x^(2k+1); (2k+1) a[k] = -sum_{i+j=k-1} a[i] a[j].
    auto* a = new LD[kTerms];
    a[0] = 1;
    for (int k = 1; k < kTerms; ++k) {
      LD s = 0;
      for (int i = 0; i < k; ++i) s += a[i] * a[k - 1 - i];
      a[k] = -s / (2 * k + 1);
    }
    return a;
  }();
  const LD x2 = x * x;
  LD sum = 0;
  for (int k = kTerms - 1; k >= 1; --k) sum = sum * x2 + coef[k];
  // x - tanh(x) = -(sum_{k>=1} a_k x^(2k+1)).
  return -(sum * x2 * x);
}

LD GeluForward(LD x, bool tanh_form) {
  if (std::isinf(x)) return x > 0 ? x : 0;
  if (!tanh_form) return 0.5L * x * erfcl(-x / kSqrt2);
  const LD k = sqrtl(2 / kPi);
  const LD u = k * (x + 0.044715L * x * x * x);
  // 0.5 * (1 + tanh(u)) = sigmoid(2u), without cancellation for negative u.
  return x * Sigmoid(2 * u);
}

LD GeluDerivative(LD x, bool tanh_form) {
  if (std::isinf(x)) return x > 0 ? 1 : 0;
  if (!tanh_form) {
    const LD cdf = 0.5L * erfcl(-x / kSqrt2);
    const LD pdf = expl(-0.5L * x * x) / kSqrt2Pi;
    return cdf + x * pdf;
  }
  const LD k = sqrtl(2 / kPi);
  const LD c = 0.044715L;
  const LD u = k * (x + c * x * x * x);
  const LD s = Sigmoid(2 * u);    // 0.5 * (1 + tanh(u))
  const LD s_neg = Sigmoid(-2 * u);
  const LD sech2 = 4 * s * s_neg;  // 1 - tanh(u)^2
  // d/dx [0.5 x (1 + tanh u)] = 0.5 (1 + tanh u) + 0.5 x sech^2(u) k (1 + 3 c x^2).
  if (sech2 == 0) return s;
  return s + 0.5L * x * sech2 * k * (1 + 3 * c * x * x);
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
  if (std::isnan(x)) return kNaN;
  switch (spec.kind) {
    case ActivationKind::kRelu:
      return x > 0 ? x : 0;
    case ActivationKind::kRelu6:
      return x <= 0 ? 0 : x >= 6 ? 6 : x;
    case ActivationKind::kLeakyRelu: {
      const LD s = spec.Param("negative_slope");
      return x > 0 ? x : (s == 0 ? 0 : s * x);
    }
    case ActivationKind::kPrelu:
      return x > 0 ? x : (prelu_weight == 0 ? 0 : prelu_weight * x);
    case ActivationKind::kElu: {
      const LD a = spec.Param("alpha");
      return x > 0 ? x : a * expm1l(x);
    }
    case ActivationKind::kCelu: {
      const LD a = spec.Param("alpha");
      return x > 0 ? x : a * expm1l(x / a);
    }
    case ActivationKind::kSelu:
      return kSeluScale * (x > 0 ? x : kSeluAlpha * expm1l(x));
    case ActivationKind::kGelu:
      return GeluForward(x, spec.Param("approximate") == 1);
    case ActivationKind::kSilu:
      if (std::isinf(x)) return x > 0 ? x : 0;
      return x * Sigmoid(x);
    case ActivationKind::kMish:
      if (std::isinf(x)) return x > 0 ? x : 0;
      return x * tanhl(Softplus1(x));
    case ActivationKind::kSoftplus: {
      const LD b = spec.Param("beta");
      const LD thr = spec.Param("threshold");
      if (b * x > thr) return x;
      return Softplus1(b * x) / b;
    }
    case ActivationKind::kHardtanh: {
      const LD lo = spec.Param("min_val");
      const LD hi = spec.Param("max_val");
      return x < lo ? lo : x > hi ? hi : x;
    }
    case ActivationKind::kHardsigmoid:
      return x <= -3 ? 0 : x >= 3 ? 1 : x / 6 + 0.5L;
    case ActivationKind::kHardswish:
      return x <= -3 ? 0 : x >= 3 ? x : x * (x + 3) / 6;
    case ActivationKind::kSigmoid:
      return Sigmoid(x);
    case ActivationKind::kTanh:
      return tanhl(x);
    case ActivationKind::kLogsigmoid:
      if (x == -kInf) return x;
      return fminl(x, 0) - log1pl(expl(-fabsl(x)));
    case ActivationKind::kSoftsign:
      if (std::isinf(x)) return x > 0 ? 1 : -1;
      return x / (1 + fabsl(x));
    case ActivationKind::kTanhshrink:
      if (std::isinf(x)) return x;
      return Tanhshrink(x);
    case ActivationKind::kSoftshrink: {
      const LD l = spec.Param("lambd");
      return x > l ? x - l : x < -l ? x + l : 0;
    }
    case ActivationKind::kHardshrink: {
      const LD l = spec.Param("lambd");
      return fabsl(x) <= l ? 0 : x;
    }
    case ActivationKind::kThreshold:
      return x <= static_cast<LD>(spec.Param("threshold")) ? spec.Param("value") : x;
    case ActivationKind::kSoftmax:
    case ActivationKind::kLogSoftmax:
      break;
  }
  assert(false && "not elementwise");
  return kNaN;
}

long double Backward(const ActivationSpec& spec, long double x, long double g,
                     long double prelu_weight) {
  if (std::isnan(x)) return kNaN;
  switch (spec.kind) {
    case ActivationKind::kRelu:
      return x > 0 ? g : 0;
    case ActivationKind::kRelu6:
      return x > 0 && x < 6 ? g : 0;
    case ActivationKind::kLeakyRelu:
      return x > 0 ? g : static_cast<LD>(spec.Param("negative_slope")) * g;
    case ActivationKind::kPrelu:
      return x > 0 ? g : prelu_weight * g;
    case ActivationKind::kElu:
      return x > 0 ? g : g * static_cast<LD>(spec.Param("alpha")) * expl(x);
    case ActivationKind::kCelu:
      return x > 0 ? g : g * expl(x / static_cast<LD>(spec.Param("alpha")));
    case ActivationKind::kSelu:
      return x > 0 ? kSeluScale * g : g * kSeluScale * kSeluAlpha * expl(x);
    case ActivationKind::kGelu:
      return g * GeluDerivative(x, spec.Param("approximate") == 1);
    case ActivationKind::kSilu: {
      if (std::isinf(x)) return x > 0 ? g : 0;
      const LD s = Sigmoid(x);
      return g * s * (1 + x * Sigmoid(-x));
    }
    case ActivationKind::kMish: {
      if (std::isinf(x)) return x > 0 ? g : 0;
      const LD sp = Softplus1(x);
      return g * (tanhl(sp) + x * Sigmoid(x) * Sech2(sp));
    }
    case ActivationKind::kSoftplus: {
      const LD b = spec.Param("beta");
      const LD thr = spec.Param("threshold");
      return b * x > thr ? g : g * Sigmoid(b * x);
    }
    case ActivationKind::kHardtanh:
      return x > static_cast<LD>(spec.Param("min_val")) &&
                     x < static_cast<LD>(spec.Param("max_val"))
                 ? g
                 : 0;
    case ActivationKind::kHardsigmoid:
      return x > -3 && x < 3 ? g / 6 : 0;
    case ActivationKind::kHardswish:
      return x < -3 ? 0 : x <= 3 ? g * (x / 3 + 0.5L) : g;
    case ActivationKind::kSigmoid:
      return g * Sigmoid(x) * Sigmoid(-x);
    case ActivationKind::kTanh:
      return g * Sech2(x);
    case ActivationKind::kLogsigmoid:
      return g * Sigmoid(-x);
    case ActivationKind::kSoftsign: {
      const LD d = 1 + fabsl(x);
      return g / (d * d);
    }
    case ActivationKind::kTanhshrink: {
      const LD t = tanhl(x);
      return g * t * t;
    }
    case ActivationKind::kSoftshrink:
    case ActivationKind::kHardshrink:
      return fabsl(x) <= static_cast<LD>(spec.Param("lambd")) ? 0 : g;
    case ActivationKind::kThreshold:
      return x <= static_cast<LD>(spec.Param("threshold")) ? 0 : g;
    case ActivationKind::kSoftmax:
    case ActivationKind::kLogSoftmax:
      break;
  }
  assert(false && "not elementwise");
  return kNaN;
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
