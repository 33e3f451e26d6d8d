// SIMD kernels for every elementwise activation and its gradient, with Google Highway's
// dynamic dispatch: each kernel family is compiled for every x86 target Highway 1.0.3
// offers (SSSE3, SSE4, AVX2, AVX-512 and AVX-512 DL) plus EMU128, and the best target the
// CPU supports is chosen at run time. This header has no SIMD types: it takes plain
// pointers, so the engine and the tests include it like any other header.
//
//   ElementwiseCall call;
//   call.kind = ActivationKind::kGelu;   // params as in ActivationSpec
//   call.dtype = DType::kFloat32;
//   call.x = x; call.y = y; call.dx = dx; call.n = n;   // dy == nullptr: dy = 1
//   RunElementwise(call);
//
// Semantics are those of src/activation_math.cc (the scalar oracle): the same formulas,
// kink conventions and limits at +-Inf, exactly; a NaN input gives NaN output and NaN
// gradient. Accuracy (measured by tests/kernels and `make accuracy`, see README): float32
// forward within 4 ULP of the long-double reference wherever the result is not tiny,
// gradients within the bounds tabulated in tests/kernels/kernel_accuracy_test.cc; float16
// and bfloat16 are computed in float32 and rounded once to nearest-even, so they are
// within 1 ULP of their dtype. Parameters are rounded to the lane type (float for every
// dtype but float64) before use.
//
// Thread-safe: kernels keep no state. Data needs no alignment.
#ifndef ACTSERVE_SRC_KERNELS_ACTIVATION_KERNELS_H_
#define ACTSERVE_SRC_KERNELS_ACTIVATION_KERNELS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "src/catalogue.h"
#include "src/dtype.h"

namespace actserve {
namespace kernels {

// One kernel invocation over `n` contiguous elements of `dtype`.
struct ElementwiseCall {
  ActivationKind kind = ActivationKind::kRelu;  // any elementwise kind (not softmax)
  // ActivationSpec::params; for PReLU params[0] is the weight of this run of elements.
  double params[2] = {0, 0};
  DType dtype = DType::kFloat32;  // a valid dtype
  const void* x = nullptr;        // n elements
  const void* dy = nullptr;       // n elements, or nullptr for dy = 1 everywhere
  void* y = nullptr;              // n elements, or nullptr: no output
  void* dx = nullptr;             // n elements, or nullptr: no gradient
  size_t n = 0;
  // PReLU with dx only: receives the weight gradient of these n elements, the sum over
  // x <= 0 of x * dy, accumulated in double lanes (float64 products rounded once); NaN
  // when any x is NaN. The summation order depends on the SIMD target's lane count,
  // never on threads.
  double* weight_gradient = nullptr;
};

// Computes y = f(x) where `call.y` is set and dx = dy * f'(x) where `call.dx` is set, in
// one pass. Each element's x and dy are read before its y and dx are written, so y may
// alias x and dx may alias dy (but y must not alias dx). At least one of y and dx must
// be set.
void RunElementwise(const ElementwiseCall& call);

// The Highway target the kernels dispatch to on this CPU, e.g. "AVX3".
const char* ActiveTargetName();

// Every Highway target (bit values of HWY_AVX3 etc.) compiled into all kernel families;
// the tests run each one that the CPU supports through hwy::SetSupportedTargetsForTest.
std::vector<int64_t> CompiledTargets();

}  // namespace kernels
}  // namespace actserve

#endif  // ACTSERVE_SRC_KERNELS_ACTIVATION_KERNELS_H_
