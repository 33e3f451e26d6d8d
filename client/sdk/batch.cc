// See actserve/batch.h.
#include "actserve/batch.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "actserve/v1/activation.pb.h"
#include "client/sdk/batch_internal.h"
#include "proto/convert.h"

namespace actserve {
namespace {

// Copies a checked `view` into `proto`. InvalidArgument prefixed with `path` when the
// view's bytes do not match its shape and dtype.
absl::Status ViewToProto(const TensorView& view, absl::string_view path, v1::Tensor* proto) {
  absl::StatusOr<int64_t> elements = CheckTensorBytes(view.dtype, view.shape, view.data.size());
  if (!elements.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", elements.status().message()));
  }
  wire::SetTensorHeader(view.dtype, view.shape, proto);
  proto->set_data(view.data.data(), view.data.size());
  return absl::OkStatus();
}

}  // namespace

ActivationArg::ActivationArg(absl::string_view text) : spec_(ParseActivationSpec(text)) {}
ActivationArg::ActivationArg(const char* text) : ActivationArg(absl::string_view(text)) {}
ActivationArg::ActivationArg(const std::string& text) : ActivationArg(absl::string_view(text)) {}
ActivationArg::ActivationArg(const ActivationSpec& spec) : spec_(spec) {}

Batch::Batch() : request_(std::make_unique<Request>()) {}
Batch::~Batch() = default;
Batch::Batch(Batch&&) noexcept = default;
Batch& Batch::operator=(Batch&&) noexcept = default;

int Batch::size() const { return request_->proto.items_size(); }

Batch& Batch::Add(const TensorView& input, const ActivationArg& activation, Mode mode,
                  const std::optional<TensorView>& grad_output,
                  const std::optional<TensorView>& prelu_weight) {
  if (!status_.ok()) return *this;
  const std::string item_path = absl::StrCat("items[", request_->proto.items_size(), "]");
  // Built aside and appended only when whole, so a failed Add leaves the request as it
  // was.
  v1::ComputeItem item;
  absl::Status status = [&]() -> absl::Status {
    if (!activation.spec().ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(item_path, ".activation: ", activation.spec().status().message()));
    }
    const ActivationSpec& spec = *activation.spec();
    absl::Status checked = ViewToProto(input, item_path + ".input", item.mutable_input());
    if (!checked.ok()) return checked;
    if (grad_output.has_value()) {
      checked = ViewToProto(*grad_output, item_path + ".grad_output", item.mutable_grad_output());
      if (!checked.ok()) return checked;
    }
    wire::ActivationToProto(spec, item.mutable_activation());
    if (spec.kind == ActivationKind::kPrelu) {
      v1::Tensor* weight = item.mutable_activation()->mutable_prelu()->mutable_weight();
      if (prelu_weight.has_value()) {
        checked = ViewToProto(*prelu_weight, item_path + ".activation.prelu.weight", weight);
        if (!checked.ok()) return checked;
      } else {
        // The wire leaves the spec's weight out (it is data, not a parameter); send it
        // as the one-element tensor in the input's dtype that the server expects.
        const double value = spec.Param("weight");
        absl::StatusOr<Tensor> one = Tensor::FromDoubles(input.dtype, {}, {&value, 1});
        if (!one.ok()) return one.status();
        wire::SetTensorHeader(one->dtype(), {}, weight);
        weight->set_data(one->data());
      }
    } else if (prelu_weight.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat(item_path, ": a PReLU weight was given for ", FormatActivationSpec(spec)));
    }
    item.set_mode(wire::ModeToProto(mode));
    return absl::OkStatus();
  }();
  if (!status.ok()) {
    status_ = std::move(status);
    return *this;
  }
  *request_->proto.add_items() = std::move(item);
  return *this;
}

}  // namespace actserve
