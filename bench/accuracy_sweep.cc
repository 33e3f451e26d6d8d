// `make accuracy`: every float32 input (all 2^32 bit patterns) through every elementwise
// kernel, forward and backward with dy = 1, against the long-double oracle
// (math::Forward<long double> / math::Backward<long double>, tests/oracle/activation_math.cc),
// on the Highway target the CPU dispatches to. Writes the maximum error table (markdown)
// to bench/results/accuracy.md.
//
// Error: |got - ref| / ulp(ref) in float32 (ref exact, ulp of a subnormal is 2^-149).
// Where the result is small against the terms that cancel to make it (gelu'(x) near
// x = -0.75, tanhshrink near 0, ...; the scale functions of tests/kernels), the table
// also gives the largest absolute error there, in float32 eps times that scale. NaN
// inputs must give NaN, and +-Inf results must match exactly (counted as mismatches).
// The long-double oracle is only consulted where it can change the answer (see
// kRecheckMargin), which brings a full sweep down from hours to minutes per activation.
//
//   accuracy_sweep [--activations=relu,gelu,...] [--stride=1] [--threads=2]
//                  [--out=bench/results/accuracy.md]
// --stride=k visits every k-th bit pattern (a quick look; the table says so).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "tests/oracle/activation_math.h"
#include "src/activation_spec.h"
#include "src/kernels/activation_kernels.h"

namespace actserve {
namespace {

using LD = long double;

struct Entry {
  const char* name;
  const char* spec;
};
const Entry kEntries[] = {
    {"relu", "relu"},           {"relu6", "relu6"},
    {"leaky_relu", "leaky_relu"}, {"prelu", "prelu(weight=0.25)"},
    {"elu", "elu"},             {"celu", "celu"},
    {"selu", "selu"},           {"gelu", "gelu"},
    {"gelu_tanh", "gelu(approximate=tanh)"}, {"silu", "silu"},
    {"mish", "mish"},           {"softplus", "softplus"},
    {"hardtanh", "hardtanh"},   {"hardsigmoid", "hardsigmoid"},
    {"hardswish", "hardswish"}, {"sigmoid", "sigmoid"},
    {"tanh", "tanh"},           {"logsigmoid", "logsigmoid"},
    {"softsign", "softsign"},   {"tanhshrink", "tanhshrink"},
    {"softshrink", "softshrink"}, {"hardshrink", "hardshrink"},
    {"threshold", "threshold(threshold=0.5, value=-1)"},
};

LD UlpFloat(LD v) {
  int e = v == 0 ? -126 : std::ilogb(v);
  if (e < -126) e = -126;
  return std::ldexp(1.0L, e - 23);
}

// 1 / ulp(v) in float32 for a double v, from its exponent bits (no libm call: this runs
// 2^33 times per activation). ulp(v) = 2^(max(e, -126) - 23), so its inverse is a power
// of two from 2^-104 to 2^149, a normal double.
double InverseUlpFloat(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  int e = static_cast<int>((bits >> 52) & 0x7FF) - 1023;
  if (e < -126) e = -126;
  const uint64_t inverse_bits = static_cast<uint64_t>(23 - e + 1023) << 52;
  double inverse;
  std::memcpy(&inverse, &inverse_bits, 8);
  return inverse;
}

// The scale of the terms that cancel (0: none), as in tests/kernels.
LD ForwardScale(ActivationKind kind, LD x) {
  if (kind == ActivationKind::kTanhshrink) return fabsl(x);
  if (kind == ActivationKind::kHardsigmoid) return 1;
  return 0;
}
LD BackwardScale(ActivationKind kind) {
  switch (kind) {
    case ActivationKind::kGelu:
    case ActivationKind::kSilu:
    case ActivationKind::kMish:
    case ActivationKind::kHardswish:
    case ActivationKind::kSigmoid:
    case ActivationKind::kTanh:
      return 1;
    default:
      return 0;
  }
}

struct Stats {
  double max_ulp = 0;
  float max_ulp_x = 0;
  double max_tiny = 0;  // in eps * scale
  uint64_t mismatches = 0;  // NaN / Inf disagreements
  float mismatch_x = 0;     // the smallest input that gave one (by bit pattern order)
  uint32_t mismatch_bits = UINT32_MAX;
  uint64_t rechecked = 0;   // inputs measured again against the long-double oracle
  double oracle_gap = 0;    // largest |double-measured - long-double-measured| error
  void Mismatch(float x) {
    ++mismatches;
    uint32_t bits;
    std::memcpy(&bits, &x, 4);
    if (bits < mismatch_bits) {
      mismatch_bits = bits;
      mismatch_x = x;
    }
  }
  void Merge(const Stats& o) {
    if (o.max_ulp > max_ulp) {
      max_ulp = o.max_ulp;
      max_ulp_x = o.max_ulp_x;
    }
    max_tiny = std::max(max_tiny, o.max_tiny);
    mismatches += o.mismatches;
    if (o.mismatch_bits < mismatch_bits) {
      mismatch_bits = o.mismatch_bits;
      mismatch_x = o.mismatch_x;
    }
    rechecked += o.rechecked;
    oracle_gap = std::max(oracle_gap, o.oracle_gap);
  }
};

// One result measured against the exact (long-double) oracle value `ref`: returns the
// error in the unit this input is judged in (ULP, or eps * scale in a tiny region) and
// folds it into `s`.
double Account(LD ref, float got, float x, LD scale, Stats* s) {
  if (std::isnan(ref) || std::isnan(got)) {
    if (!(std::isnan(ref) && std::isnan(got))) s->Mismatch(x);
    return 0;
  }
  const float want = static_cast<float>(ref);
  if (std::isinf(want) || std::isinf(got)) {
    if (want != got) s->Mismatch(x);
    return 0;
  }
  if (scale > 0 && fabsl(ref) < scale / 8) {
    const double tiny = static_cast<double>(
        fabsl(got - ref) / (std::numeric_limits<float>::epsilon() * scale));
    s->max_tiny = std::max(s->max_tiny, tiny);
    return tiny;
  }
  const double err = static_cast<double>(fabsl(got - ref) / UlpFloat(ref));
  if (err > s->max_ulp) {
    s->max_ulp = err;
    s->max_ulp_x = x;
  }
  return err;
}

// The same measure against the float64 oracle (math::Forward<double>, the precision the
// engine's own scalar path uses for float32: 29 spare bits). -1: the input needs the
// long-double oracle (NaN, Inf, or no cheap verdict).
double QuickError(double ref, float got, double scale) {
  if (!std::isfinite(ref) || !std::isfinite(got)) return -1;
  const double diff = std::fabs(static_cast<double>(got) - ref);
  if (scale > 0 && std::fabs(ref) < scale / 8) {
    return diff / (static_cast<double>(std::numeric_limits<float>::epsilon()) * scale);
  }
  return diff * InverseUlpFloat(ref);
}

// The long-double oracle (x87, ~10x slower than libm's double functions) would take
// hours for 2^32 inputs per activation on two cores. So every input is first measured
// against the float64 oracle, whose error is ~2^-29 float32 ULP; only inputs whose
// error comes within kRecheckMargin of the running maximum (or that are NaN / Inf) are
// measured again against the long-double oracle, and only those measurements enter the
// table. This gives the long-double maximum exactly (to the table's 0.01 ULP) as long
// as the two oracles never disagree by more than the margin; the largest disagreement
// seen on the re-checked inputs is reported with the table.
constexpr double kRecheckMargin = 0.01;

void Measure(ActivationKind kind, bool backward, const ActivationSpec& spec, float x,
             float got, Stats* s) {
  const double quick_ref = backward ? math::Backward<double>(spec, x, 1.0)
                                    : math::Forward<double>(spec, static_cast<double>(x));
  const LD scale_ld = backward ? BackwardScale(kind) : ForwardScale(kind, x);
  const double scale = static_cast<double>(scale_ld);
  const double quick = QuickError(quick_ref, got, scale);
  const bool tiny = scale > 0 && std::fabs(quick_ref) < scale / 8;
  // Errors below the margin cannot show in the table's two decimals.
  const double threshold =
      std::max((tiny ? s->max_tiny : s->max_ulp) - kRecheckMargin, kRecheckMargin);
  if (quick >= 0 && quick < threshold) return;
  ++s->rechecked;
  const LD ref = backward ? math::Backward<LD>(spec, x, 1.0L) : math::Forward<LD>(spec, x);
  const double exact = Account(ref, got, x, scale_ld, s);
  if (quick >= 0) s->oracle_gap = std::max(s->oracle_gap, std::fabs(exact - quick));
}

struct Result {
  Stats forward, backward;
};

Result Sweep(const ActivationSpec& spec, uint64_t stride, int threads) {
  constexpr uint64_t kBlock = 1 << 16;
  const uint64_t total = uint64_t{1} << 32;
  std::atomic<uint64_t> next{0};
  std::mutex mu;
  Result result;
  auto worker = [&] {
    std::vector<float> x(kBlock), y(kBlock), dx(kBlock);
    Result local;
    for (;;) {
      const uint64_t block = next.fetch_add(1);
      const uint64_t first = block * kBlock * stride;
      if (first >= total) break;
      size_t n = 0;
      for (uint64_t i = 0; i < kBlock; ++i) {
        const uint64_t bits = first + i * stride;
        if (bits >= total) break;
        const uint32_t b32 = static_cast<uint32_t>(bits);
        std::memcpy(&x[n++], &b32, 4);
      }
      kernels::ElementwiseCall call;
      call.kind = spec.kind;
      call.params[0] = spec.params[0];
      call.params[1] = spec.params[1];
      call.dtype = DType::kFloat32;
      call.x = x.data();
      call.y = y.data();
      call.dx = dx.data();
      call.n = n;
      kernels::RunElementwise(call);
      for (size_t i = 0; i < n; ++i) {
        Measure(spec.kind, false, spec, x[i], y[i], &local.forward);
        Measure(spec.kind, true, spec, x[i], dx[i], &local.backward);
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    result.forward.Merge(local.forward);
    result.backward.Merge(local.backward);
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (std::thread& t : pool) t.join();
  return result;
}

int Main(int argc, char** argv) {
  std::vector<std::string> names;
  uint64_t stride = 1;
  int threads = 2;
  std::string out = "bench/results/accuracy.md";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--activations=", 0) == 0) {
      names = absl::StrSplit(arg.substr(14), ',', absl::SkipEmpty());
    } else if (arg.rfind("--stride=", 0) == 0) {
      stride = std::stoull(arg.substr(9));
    } else if (arg.rfind("--threads=", 0) == 0) {
      threads = std::stoi(arg.substr(10));
    } else if (arg.rfind("--out=", 0) == 0) {
      out = arg.substr(6);
    } else {
      std::fprintf(stderr, "unknown flag %s\n", arg.c_str());
      return 2;
    }
  }
  std::ofstream md(out);
  md << "# actserve kernels: float32 accuracy over every input\n\n"
     << absl::StrFormat(
            "Highway target %s; %s; dy = 1 for the backward column. Error in ULP of "
            "float32 against the long-double oracle (tests/oracle/activation_math.cc); where the "
            "result is small against the terms that cancel (|ref| < scale/8), the "
            "tiny-region column gives the largest absolute error there in eps * scale "
            "instead. Mismatches: NaN/Inf disagreements (must be 0). Every input is "
            "first measured against the float64 oracle; those within %.2f ULP of the "
            "running maximum and above it (and every NaN / Inf) are measured again against the "
            "long-double oracle, and only those measurements enter the table. "
            "'oracle gap' is the largest difference between the two measurements seen "
            "(the maxima are exact while it stays below %.2f).\n\n",
            kernels::ActiveTargetName(),
            stride == 1 ? "all 2^32 bit patterns"
                        : absl::StrFormat("every %d-th bit pattern (a sample, not the full sweep)",
                                          stride),
            kRecheckMargin, kRecheckMargin)
     << "| activation | forward max ULP | at x | backward max ULP | at x | backward tiny "
        "region (eps*scale) | mismatches | re-checked inputs | oracle gap (ULP) | seconds "
        "|\n"
     << "|---|---|---|---|---|---|---|---|---|---|\n";
  md.flush();
  for (const Entry& e : kEntries) {
    if (!names.empty() && std::find(names.begin(), names.end(), e.name) == names.end()) {
      continue;
    }
    const ActivationSpec spec = *ParseActivationSpec(e.spec);
    const auto start = std::chrono::steady_clock::now();
    const Result r = Sweep(spec, stride, threads);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // A mismatch count names the first input (by bit pattern) of each direction.
    std::string mismatches = absl::StrCat(r.forward.mismatches + r.backward.mismatches);
    if (r.forward.mismatches > 0) {
      absl::StrAppend(&mismatches, absl::StrFormat(" (forward at %.9g)", r.forward.mismatch_x));
    }
    if (r.backward.mismatches > 0) {
      absl::StrAppend(&mismatches,
                      absl::StrFormat(" (backward at %.9g)", r.backward.mismatch_x));
    }
    const std::string row = absl::StrFormat(
        "| %s | %.2f | %.9g | %.2f | %.9g | %.2f | %s | %d | %.1e | %.0f |\n", e.spec,
        r.forward.max_ulp, r.forward.max_ulp_x, r.backward.max_ulp, r.backward.max_ulp_x,
        r.backward.max_tiny, mismatches,
        r.forward.rechecked + r.backward.rechecked,
        std::max(r.forward.oracle_gap, r.backward.oracle_gap), seconds);
    md << row;
    md.flush();
    std::printf("%s", row.c_str());
    std::fflush(stdout);
  }
  std::printf("wrote %s\n", out.c_str());
  return 0;
}

}  // namespace
}  // namespace actserve

int main(int argc, char** argv) { return actserve::Main(argc, argv); }
