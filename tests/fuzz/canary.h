// What the request-path fuzzers look for in a reply: a canary element (the pattern
// server/buffer_pool.h's kCanary fills every buffer with under fill_with_canary) is a
// byte that the call never wrote, i.e. of some other call.
//
// A result may carry the NaN payload of its own input, quieted, and that can be a canary
// element without any leak: a float32 signalling NaN 0x7fb50000 quiets to 0x7ff50000,
// whose bfloat16 is 0x7ff5. A NaN computed from non-NaN inputs is the default NaN, never
// a canary element. So a fuzzer checks the results of items whose inputs hold no NaN.
#ifndef ACTSERVE_TESTS_FUZZ_CANARY_H_
#define ACTSERVE_TESTS_FUZZ_CANARY_H_

#include <cstdint>
#include <cstring>

#include "absl/strings/string_view.h"
#include "actserve/types.h"
#include "server/buffer_pool.h"

namespace actserve {
namespace fuzz {

// True when `data`, read as `dtype` elements, holds a NaN.
inline bool HoldsNaN(absl::string_view data, DType dtype) {
  const size_t size = DTypeSize(dtype);
  for (size_t i = 0; size > 0 && i + size <= data.size(); i += size) {
    uint64_t bits = 0;
    std::memcpy(&bits, data.data() + i, size);
    switch (dtype) {
      case DType::kFloat64:
        if ((bits & 0x7fffffffffffffffULL) > 0x7ff0000000000000ULL) return true;
        break;
      case DType::kFloat32:
        if ((bits & 0x7fffffffU) > 0x7f800000U) return true;
        break;
      case DType::kFloat16:
        if ((bits & 0x7fffU) > 0x7c00U) return true;
        break;
      case DType::kBFloat16:
        if ((bits & 0x7fffU) > 0x7f80U) return true;
        break;
      case DType::kUnspecified:
        return false;
    }
  }
  return false;
}

// True when `data`, read as `dtype` elements, holds a canary element.
inline bool HoldsCanaryElement(absl::string_view data, DType dtype) {
  const size_t size = DTypeSize(dtype);
  for (size_t i = 0; size > 0 && i + size <= data.size(); i += size) {
    for (size_t k = 0; k < sizeof(server::kCanary); k += size) {
      if (std::memcmp(data.data() + i, server::kCanary + k, size) == 0) return true;
    }
  }
  return false;
}

}  // namespace fuzz
}  // namespace actserve

#endif  // ACTSERVE_TESTS_FUZZ_CANARY_H_
