// One tensor to run through one activation: what the engine computes (engine.h) and what
// the server's wire conversion produces from a request (proto/convert.h). Plain views and
// values, apart from the engine, so that the wire conversion needs only the core's types.
#ifndef ACTSERVE_SRC_COMPUTE_ITEM_H_
#define ACTSERVE_SRC_COMPUTE_ITEM_H_

#include <optional>

#include "actserve/types.h"

namespace actserve {

// One tensor to run through one activation.
struct ComputeItem {
  ConstTensorView input;
  ActivationSpec activation;
  Mode mode = Mode::kForwardBackward;
  // dy: the input's shape and dtype. Absent: dy = 1 everywhere. Ignored for kForward.
  std::optional<ConstTensorView> grad_output;
  // PReLU only: 1 value, or C = input.shape[1] values, in the input's dtype. Absent: one
  // weight equal to activation.Param("weight").
  std::optional<ConstTensorView> prelu_weight;
};

}  // namespace actserve

#endif  // ACTSERVE_SRC_COMPUTE_ITEM_H_
