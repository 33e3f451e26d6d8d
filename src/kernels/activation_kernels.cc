#include "src/kernels/activation_kernels.h"

#include "hwy/targets.h"
#include "src/kernels/kernel_families.h"

namespace actserve {
namespace kernels {

void RunElementwise(const ElementwiseCall& call) {
  switch (call.kind) {
    case ActivationKind::kGelu:
      return RunGeluFamily(call);
    case ActivationKind::kElu:
    case ActivationKind::kCelu:
    case ActivationKind::kSelu:
    case ActivationKind::kSilu:
    case ActivationKind::kMish:
    case ActivationKind::kSoftplus:
    case ActivationKind::kSigmoid:
    case ActivationKind::kTanh:
    case ActivationKind::kLogsigmoid:
    case ActivationKind::kTanhshrink:
      return RunExponentialFamily(call);
    case ActivationKind::kRelu:
    case ActivationKind::kRelu6:
    case ActivationKind::kLeakyRelu:
    case ActivationKind::kPrelu:
    case ActivationKind::kHardtanh:
    case ActivationKind::kHardsigmoid:
    case ActivationKind::kHardswish:
    case ActivationKind::kSoftsign:
    case ActivationKind::kSoftshrink:
    case ActivationKind::kHardshrink:
    case ActivationKind::kThreshold:
      return RunPiecewiseFamily(call);
    case ActivationKind::kSoftmax:
    case ActivationKind::kLogSoftmax:
      break;  // not elementwise: RunSoftmax
  }
}

void RunSoftmax(const SoftmaxCall& call, int64_t begin, int64_t end) {
  if (begin >= end) return;
  RunSoftmaxFamily(call, begin, end);
}

const char* ActiveTargetName() { return hwy::TargetName(GeluFamilyTarget()); }

std::vector<int64_t> CompiledTargets() {
  const int64_t all = PiecewiseFamilyTargets() & ExponentialFamilyTargets() &
                      GeluFamilyTargets() & SoftmaxFamilyTargets();
  std::vector<int64_t> targets;
  for (int64_t rest = all; rest != 0; rest &= rest - 1) targets.push_back(rest & -rest);
  return targets;
}

}  // namespace kernels
}  // namespace actserve
