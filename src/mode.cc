// ModeName (actserve/types.h).
#include "actserve/types.h"

namespace actserve {

absl::string_view ModeName(Mode mode) {
  switch (mode) {
    case Mode::kForward:
      return "forward";
    case Mode::kBackward:
      return "backward";
    case Mode::kForwardBackward:
      break;
  }
  return "forward_backward";
}

}  // namespace actserve
