// Helpers shared by the engine's test suites: build a batch from long-double values,
// run it through the Engine, and read the results back as long doubles.
#ifndef ACTSERVE_TESTS_SRC_ENGINE_TEST_UTIL_H_
#define ACTSERVE_TESTS_SRC_ENGINE_TEST_UTIL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "src/activation_spec.h"
#include "src/engine.h"
#include "tests/oracle/reference.h"

namespace actserve {
namespace testing_util {

// One item, in values already representable in `dtype`.
struct TestItem {
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  std::vector<long double> x;
  ActivationSpec spec;
  Mode mode = Mode::kForwardBackward;
  std::optional<std::vector<long double>> g;
  std::optional<std::vector<long double>> weight;  // PReLU
  std::vector<int64_t> weight_shape;
};

struct TestResult {
  std::vector<long double> y, dx, dw;
  size_t y_bytes = 0, dx_bytes = 0, dw_bytes = 0;
};

inline absl::StatusOr<std::vector<TestResult>> RunBatch(const Engine& engine,
                                                        const std::vector<TestItem>& items) {
  std::vector<std::vector<char>> storage;
  storage.reserve(items.size() * 3);
  std::vector<ComputeItem> batch(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const TestItem& t = items[i];
    ComputeItem& c = batch[i];
    storage.push_back(ref::Pack(t.dtype, t.x));
    c.input = {t.dtype, t.shape, storage.back()};
    c.activation = t.spec;
    c.mode = t.mode;
    if (t.g) {
      storage.push_back(ref::Pack(t.dtype, *t.g));
      c.grad_output = ConstTensorView{t.dtype, t.shape, storage.back()};
    }
    if (t.weight) {
      storage.push_back(ref::Pack(t.dtype, *t.weight));
      c.prelu_weight = ConstTensorView{t.dtype, t.weight_shape, storage.back()};
    }
  }
  absl::StatusOr<std::vector<ItemResult>> results = engine.ComputeToStrings(batch);
  if (!results.ok()) return results.status();
  std::vector<TestResult> out(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const ItemResult& r = (*results)[i];
    const DType d = items[i].dtype;
    out[i].y = ref::Unpack(d, r.output);
    out[i].dx = ref::Unpack(d, r.grad_input);
    out[i].dw = ref::Unpack(d, r.grad_weight);
    out[i].y_bytes = r.output.size();
    out[i].dx_bytes = r.grad_input.size();
    out[i].dw_bytes = r.grad_weight.size();
  }
  return out;
}

inline ActivationSpec MakeSpec(ActivationKind kind, std::vector<NamedParam> params = {}) {
  absl::StatusOr<ActivationSpec> spec = MakeActivationSpec(kind, params);
  if (!spec.ok()) {
    // A test error, not an engine error: fail loudly.
    fprintf(stderr, "MakeActivationSpec failed: %s\n", spec.status().ToString().c_str());
    abort();
  }
  return *spec;
}

inline std::vector<long double> RoundAll(DType dtype, std::vector<long double> v) {
  for (long double& e : v) e = ref::RoundTo(dtype, e);
  return v;
}

}  // namespace testing_util
}  // namespace actserve

#endif  // ACTSERVE_TESTS_SRC_ENGINE_TEST_UTIL_H_
