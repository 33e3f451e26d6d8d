// The kernels' accuracy bounds: the one table that the accuracy tests assert
// (tests/kernels/kernel_accuracy_test.cc and softmax_kernel_test.cc on every compiled
// Highway target, tests/src/engine_accuracy_test.cc through the engine), that the kernel
// families' opening comments refer to, and that README's accuracy table shows
// (tests/docs/readme_table_test.cc regenerates that table from here and from
// bench/results/accuracy.md and fails when the README differs).
//
// Metric: |got - ref| / ulp(ref) in the output dtype, ref the long-double oracle
// (tests/oracle), exact. Where the result is small against the terms that cancel to make
// it (|ref| < scale / 8, the scale defined per activation by the tests: |x| for
// tanhshrink, |dy| for the gradients with a zero or a 1 - y^2, ...), the absolute bound
// |got - ref| <= abs_eps * eps * scale applies instead, eps the epsilon of the lane type
// (float for float32 / float16 / bfloat16, double for float64). A test that compares
// against the reference rounded to the dtype counts whole steps: StepBound.
//
// Each bound is the largest error measured over every compiled target (those without FMA
// included) on the tests' inputs and over every float32 input (`make accuracy`), rounded
// up; float32 forward is never above DESIGN.md's 4 ULP. float16 and bfloat16 are computed
// in float and rounded once: 1 ULP. Header-only, no code: nothing here runs in the server.
#ifndef ACTSERVE_SRC_KERNELS_ACCURACY_BOUNDS_H_
#define ACTSERVE_SRC_KERNELS_ACCURACY_BOUNDS_H_

#include <cstdint>

#include "src/activation_spec.h"
#include "src/catalogue.h"
#include "src/dtype.h"

namespace actserve {
namespace kernels {

struct AccuracyBound {
  double forward_ulp;
  double backward_ulp;
  double abs_eps;  // in eps * scale, where the result is small against its terms
};

// The bound of `spec`'s kernel in `dtype`.
constexpr AccuracyBound AccuracyBoundFor(const ActivationSpec& spec, DType dtype) {
  if (dtype == DType::kFloat16 || dtype == DType::kBFloat16) return {1.0, 1.0, 4.0};
  const bool f64 = dtype == DType::kFloat64;
  switch (spec.kind) {
    case ActivationKind::kLeakyRelu:
    case ActivationKind::kPrelu:
      // s * x with s rounded to float: 1 ULP; exact products in float64.
      return f64 ? AccuracyBound{0.5, 0.5, 0} : AccuracyBound{1.0, 1.0, 0};
    case ActivationKind::kRelu:
    case ActivationKind::kRelu6:
    case ActivationKind::kHardtanh:
    case ActivationKind::kHardshrink:
    case ActivationKind::kThreshold:
    case ActivationKind::kSoftshrink:
      return {0.5, 0.5, 0};  // correctly rounded
    case ActivationKind::kHardsigmoid:
    case ActivationKind::kHardswish:
      return {2.0, 2.0, 1.0};
    case ActivationKind::kSoftsign:
      return {2.0, 3.5, 0};
    case ActivationKind::kElu:
    case ActivationKind::kCelu:
    case ActivationKind::kSelu:
      return {2.0, 2.5, 0};
    case ActivationKind::kSigmoid:
    case ActivationKind::kLogsigmoid:
    case ActivationKind::kSoftplus:
      return {3.0, 4.0, 1.0};
    case ActivationKind::kTanh:
      return {3.0, 5.5, 1.0};
    case ActivationKind::kSilu:
      return {4.0, 4.0, 2.0};
    case ActivationKind::kMish:
      // float32 over every float: 3.52 forward, 6.13 backward with dy = 1 (at
      // x = -0.7938); a general dy adds its product's rounding (7.76 seen).
      return {4.0, 8.0, 2.0};
    case ActivationKind::kGelu:
      if (spec.params[0] == static_cast<double>(GeluApproximate::kTanh)) {
        // float32 over every float: 3.56 forward, 5.46 backward with dy = 1 (at
        // x = -1.3758); a general dy adds its product's rounding (6.5 seen).
        return {f64 ? 4.5 : 4.0, 7.0, 2.0};
      }
      return {f64 ? 4.5 : 3.5, 4.0, 2.0};
    case ActivationKind::kTanhshrink:
      // float lanes: a series below |x| = 1.5 and (|x| - 1) + (1 - tanh|x|) above, the
      // last steps in hi + lo (0.97 ULP forward on the targets without FMA); float64
      // cancels in x - tanh(x) beyond |x| = 0.6, where its series hands over.
      return {f64 ? 12.0 : 1.0, f64 ? 5.5 : 2.5, 4.0};
    case ActivationKind::kSoftmax:
    case ActivationKind::kLogSoftmax:
      // y within 2.5 ULP; dx within 7.5 ULP or 2 eps of the terms that cancel in it.
      return {2.5, 7.5, 2.0};
  }
  return {0.5, 0.5, 0};
}

// The bound in whole steps of the dtype between `got` and the reference rounded once to
// the dtype: |got - ref| <= b ULP and |rounded - ref| <= 0.5 ULP give at most b + 0.5,
// so floor(b + 0.5) steps.
constexpr int64_t StepBound(double ulp_bound) {
  return static_cast<int64_t>(ulp_bound + 0.5);
}

}  // namespace kernels
}  // namespace actserve

#endif  // ACTSERVE_SRC_KERNELS_ACCURACY_BOUNDS_H_
