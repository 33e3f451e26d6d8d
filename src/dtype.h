// Element types of tensors (DType) and the exact half-precision conversions: declared in
// the public types header, which the SDK installs; this is the core's name for that part
// of it, so that core code includes what it uses. Implemented in dtype.cc.
#ifndef ACTSERVE_SRC_DTYPE_H_
#define ACTSERVE_SRC_DTYPE_H_

#include "actserve/types.h"

#endif  // ACTSERVE_SRC_DTYPE_H_
