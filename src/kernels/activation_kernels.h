// SIMD kernels for every activation and its gradient (the elementwise ones, softmax and
// log_softmax), with Google Highway's dynamic dispatch: each kernel family is compiled
// for every x86 target Highway 1.0.3 offers (SSSE3, SSE4, AVX2, AVX-512 and AVX-512 DL)
// plus EMU128, and the best target the CPU supports is chosen at run time. This header
// has no SIMD types: it takes plain pointers, so the engine and the tests include it like
// any other header.
//
//   ElementwiseCall call;
//   call.kind = ActivationKind::kGelu;   // params as in ActivationSpec
//   call.dtype = DType::kFloat32;
//   call.x = x; call.y = y; call.dx = dx; call.n = n;   // dy == nullptr: dy = 1
//   RunElementwise(call);
//
//   SoftmaxCall softmax;                 // softmax over dim 1 of [rows, cols]
//   softmax.x = x; softmax.y = y; softmax.outer = rows; softmax.lane = cols;
//   RunSoftmax(softmax, 0, rows);        // any sub-range of [0, rows) on any thread
//
// Semantics are those of the long-double oracle (tests/oracle/activation_math.cc): the
// same formulas, kink conventions and limits at +-Inf, exactly; a NaN input gives NaN
// output and NaN gradient. Accuracy: within the bounds of src/kernels/accuracy_bounds.h
// (float32 forward within 4 ULP wherever the result is not tiny), measured by
// tests/kernels and `make accuracy` (see README); float16 and bfloat16 are computed in
// float32 and rounded once to nearest-even, so they are within 1 ULP of their dtype. Parameters are rounded to the lane type (float for every
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

// softmax or log_softmax of a tensor seen as [outer, lane, inner], reduced along `lane`
// (the dimension `dim`: outer is the product of the dimensions before it, inner of those
// after it). Reduction l (0 <= l < outer * inner) holds the `lane` elements
// (l / inner) * lane * inner + l % inner + k * inner, k = 0..lane-1.
struct SoftmaxCall {
  bool log = false;               // false: softmax; true: log_softmax
  DType dtype = DType::kFloat32;  // a valid dtype
  const void* x = nullptr;        // outer * lane * inner elements, the whole tensor
  const void* dy = nullptr;       // the same shape, or nullptr for dy = 1 everywhere
  void* y = nullptr;              // the same shape, or nullptr: no output
  void* dx = nullptr;             // the same shape, or nullptr: no gradient
  int64_t outer = 1;              // >= 1
  int64_t lane = 1;               // >= 1
  int64_t inner = 1;              // >= 1
};

// Computes the reductions [begin, end) of `call` (0 <= begin <= end <= outer * inner):
// y = softmax(x) = exp(x - max) / sum(exp(x - max)), or log_softmax(x) = x - max -
// log(sum(exp(x - max))), where `call.y` is set, and dx where `call.dx` is set:
// softmax y * (dy - sum(dy * y)), log_softmax dy - exp(y) * sum(dy), along the lane. y
// is recomputed when only dx is asked for. Semantics and special values are those of
// math::SoftmaxForward / SoftmaxBackward (tests/oracle/activation_math.h): a lane with a NaN, an
// +Inf, or only -Inf entries is NaN throughout. Accuracy (tests/kernels/
// softmax_kernel_test.cc): float32 and float64 y within 2.5 ULP of the long-double
// reference; float16 / bfloat16 computed in float32, rounded once, within 1 ULP; dx
// within 7.5 ULP, or 2 epsilons of its cancelling terms' size where dy is close to the
// subtracted sum. Each reduction's results depend only on its own elements, never on
// `begin` / `end`, so any split of the range over threads gives the same bits. Each
// element's x and dy are read before its y and dx are written, so y may alias x and dx
// may alias dy (y must not alias dx). At least one of y and dx must be set. No heap
// allocation; scratch lives on the stack (about 16 KiB).
void RunSoftmax(const SoftmaxCall& call, int64_t begin, int64_t end);

// The Highway target the kernels dispatch to on this CPU, e.g. "AVX3".
const char* ActiveTargetName();

// Every Highway target (bit values of HWY_AVX3 etc.) compiled into all kernel families;
// the tests run each one that the CPU supports through hwy::SetSupportedTargetsForTest.
std::vector<int64_t> CompiledTargets();

}  // namespace kernels
}  // namespace actserve

#endif  // ACTSERVE_SRC_KERNELS_ACTIVATION_KERNELS_H_
