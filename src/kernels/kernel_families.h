// Internal: the dynamic-dispatch entry points of each kernel family translation unit.
// activation_kernels.cc routes every kind to its family; nothing else
// includes this header.
#ifndef ACTSERVE_SRC_KERNELS_KERNEL_FAMILIES_H_
#define ACTSERVE_SRC_KERNELS_KERNEL_FAMILIES_H_

#include <cstdint>

#include "src/kernels/activation_kernels.h"

namespace actserve {
namespace kernels {

// piecewise_kernels.cc: relu, relu6, leaky_relu, prelu, hardtanh, hardsigmoid,
// hardswish, softsign, softshrink, hardshrink, threshold.
void RunPiecewiseFamily(const ElementwiseCall& call);
// exponential_kernels.cc: elu, celu, selu, silu, mish, softplus, sigmoid, tanh,
// logsigmoid, tanhshrink.
void RunExponentialFamily(const ElementwiseCall& call);
// gelu_kernels.cc: gelu (approximate = none and tanh).
void RunGeluFamily(const ElementwiseCall& call);
// softmax_kernels.cc: softmax and log_softmax (RunSoftmax).
void RunSoftmaxFamily(const SoftmaxCall& call, int64_t begin, int64_t end);

// The target each family dispatches to now, and the targets each was compiled for
// (HWY_TARGETS of its translation unit).
int64_t PiecewiseFamilyTarget();
int64_t PiecewiseFamilyTargets();
int64_t ExponentialFamilyTarget();
int64_t ExponentialFamilyTargets();
int64_t GeluFamilyTarget();
int64_t GeluFamilyTargets();
int64_t SoftmaxFamilyTarget();
int64_t SoftmaxFamilyTargets();

}  // namespace kernels
}  // namespace actserve

#endif  // ACTSERVE_SRC_KERNELS_KERNEL_FAMILIES_H_
