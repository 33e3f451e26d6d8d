// libFuzzer target: arbitrary bytes as the text form of an activation spec
// (actserve::ParseActivationSpec). A spec that parses must format to canonical text that
// parses back to the same spec (the contract in src/activation_spec.h); anything else
// must be a clean InvalidArgument. A crash, sanitizer report or broken round trip is a
// bug.
//
//   activation_spec_fuzzer -max_total_time=60 corpus_dir tests/fuzz/corpus/activation_spec
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "src/activation_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<actserve::ActivationSpec> spec = actserve::ParseActivationSpec(text);
  if (!spec.ok()) {
    if (spec.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  const std::string canonical = actserve::FormatActivationSpec(*spec);
  absl::StatusOr<actserve::ActivationSpec> again = actserve::ParseActivationSpec(canonical);
  if (!again.ok() || *again != *spec) std::abort();
  if (actserve::FormatActivationSpec(*again) != canonical) std::abort();
  return 0;
}
