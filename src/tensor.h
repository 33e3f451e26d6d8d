// Non-owning tensor views, NumElements, CheckTensorBytes and ShapeToString: declared in
// the public types header, which the SDK installs; this is the core's name for that part
// of it, so that core code includes what it uses. Implemented in tensor.cc.
#ifndef ACTSERVE_SRC_TENSOR_H_
#define ACTSERVE_SRC_TENSOR_H_

#include "actserve/types.h"

#endif  // ACTSERVE_SRC_TENSOR_H_
