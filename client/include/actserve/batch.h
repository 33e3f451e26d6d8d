// A builder for one Compute request: a batch of tensors, each with its activation and
// mode, computed by the server as one all-or-nothing unit.
//
//   actserve::Batch batch;
//   batch.Add(actserve::MakeTensorView(x, shape), "gelu(approximate=tanh)")
//        .Add(actserve::MakeTensorView(y, shape), "relu", actserve::Mode::kForward);
//   absl::StatusOr<std::vector<actserve::ItemOutput>> out = client.Compute(batch);
//
// `Add` copies the tensors into the request at once, so the caller's memory need only
// live for the call to `Add`. Activation text is parsed on the client; a bad spec makes
// the batch invalid (see `status()`), and `Client` reports that error without any
// network call.
#ifndef ACTSERVE_CLIENT_INCLUDE_ACTSERVE_BATCH_H_
#define ACTSERVE_CLIENT_INCLUDE_ACTSERVE_BATCH_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "actserve/tensor.h"
#include "actserve/types.h"

namespace actserve {
namespace client_internal {
class BatchWire;  // client/sdk/batch_internal.h: the SDK's access to the wire request
}  // namespace client_internal

// An activation given either as text (`"leaky_relu(negative_slope=0.2)"`, parsed with
// ParseActivationSpec when the argument is made) or as an already built ActivationSpec.
// Implicit on purpose, so that calls take either form. Holds the parse result, including
// a parse error, which the call that receives it reports.
class ActivationArg {
 public:
  ActivationArg(absl::string_view text);      // NOLINT(google-explicit-constructor)
  ActivationArg(const char* text);            // NOLINT(google-explicit-constructor)
  ActivationArg(const std::string& text);     // NOLINT(google-explicit-constructor)
  ActivationArg(const ActivationSpec& spec);  // NOLINT(google-explicit-constructor)

  // The spec, or InvalidArgument from the parser ("unknown activation 'gelux' ...").
  const absl::StatusOr<ActivationSpec>& spec() const { return spec_; }

 private:
  absl::StatusOr<ActivationSpec> spec_;
};

// Builds one ComputeRequest. Move-only (it owns copies of every tensor added). Not
// thread-safe: build on one thread, then any number of threads may send it.
class Batch {
 public:
  Batch();
  ~Batch();
  Batch(Batch&&) noexcept;
  Batch& operator=(Batch&&) noexcept;
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  // Appends an item: `input` through `activation` in `mode`, with dy = `grad_output`
  // (absent: dy = 1, so grad_input is f'(x) itself) and, for PReLU, the weight tensor
  // `prelu_weight` (absent: one weight, the spec's `weight`, 0.25 unless the text says
  // otherwise). The tensors are copied now.
  //
  // Errors are recorded rather than returned, so that calls chain: the first one makes
  // `status()` InvalidArgument naming the item ("items[1].activation: ...",
  // "items[0].input: 12 bytes of data, but shape [2,2] float32 needs 16"), and later
  // calls to Add are ignored. Checked here: the activation spec, each view's byte count
  // against its shape and dtype. Everything else (grad_output matching the input,
  // softmax dim, limits) is the server's to check.
  Batch& Add(const TensorView& input, const ActivationArg& activation,
             Mode mode = Mode::kForwardBackward,
             const std::optional<TensorView>& grad_output = std::nullopt,
             const std::optional<TensorView>& prelu_weight = std::nullopt);

  // The number of items added successfully.
  int size() const;
  // OK, or the first error recorded by Add.
  const absl::Status& status() const { return status_; }

 private:
  friend class client_internal::BatchWire;
  // The wire request built so far; its type is the SDK's own (batch_internal.h), so that
  // no generated protobuf code is part of the public API.
  struct Request;
  std::unique_ptr<Request> request_;
  absl::Status status_;
};

}  // namespace actserve

#endif  // ACTSERVE_CLIENT_INCLUDE_ACTSERVE_BATCH_H_
