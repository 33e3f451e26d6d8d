// Fuzz target: bytes -> the Open Inference Protocol's HTTP/REST request decoder, the code
// that parses real REST traffic (server/inference/rest_json.h: ParseInferRequest, with
// the limits the door uses), then the model's plan and, for a request the plan accepts,
// the engine and the response writer. The input is split as the door splits a body with
// the binary extension: an input that starts with '{' is a whole JSON body; otherwise its
// first byte chooses the JSON header's length (a fraction of the rest) and the remainder
// is the binary tail. Checked: every input tensor views exactly
// its shape's bytes; the memory the parser asked for is bounded by the body's size; the
// response header is valid JSON whose outputs are the plan's requested ones.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "server/inference/model.h"
#include "server/inference/rest_json.h"
#include "src/catalogue.h"
#include "src/dtype.h"
#include "src/engine.h"

namespace {

using actserve::server::inference::InferencePlan;
using actserve::server::inference::RestInferRequest;
using actserve::server::inference::RestJsonLimits;
using actserve::server::inference::RestOutput;

const actserve::Engine& TheEngine() {
  static const actserve::Engine* const engine = [] {
    actserve::EngineOptions options;
    options.max_elements = 1 << 16;  // keep each run fast
    return new actserve::Engine(options);
  }();
  return *engine;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool whole = data[0] == '{';
  const std::string body(reinterpret_cast<const char*>(data) + (whole ? 0 : 1),
                         size - (whole ? 0 : 1));
  const size_t header = whole ? body.size() : body.size() * data[0] / 255;
  const absl::string_view json(body.data(), header);
  const absl::string_view binary(body.data() + header, body.size() - header);

  RestJsonLimits limits;  // the door's: max_rank 32, as the server's default
  limits.max_depth = 4 + limits.max_rank;
  std::vector<std::unique_ptr<char[]>> blocks;
  size_t allocated = 0;
  RestInferRequest parsed;
  const absl::Status status = actserve::server::inference::ParseInferRequest(
      json, binary, limits,
      [&](size_t bytes) -> absl::StatusOr<absl::Span<char>> {
        allocated += bytes;
        blocks.push_back(std::make_unique<char[]>(bytes));
        return absl::Span<char>(blocks.back().get(), bytes);
      },
      &parsed);
  // A JSON value takes at least two bytes ("1,") and becomes at most 8 bytes, once where
  // the shape comes first, twice (staged, then converted) where the data does, and the
  // staging takes 64 KiB chunks: at most 8 bytes per byte of header, plus a chunk per
  // input.
  if (allocated > 8 * json.size() + static_cast<size_t>(limits.max_tensors) * 65536 + 64) {
    std::abort();
  }
  if (!status.ok()) return 0;

  // The model comes from the URL in the door; here the id's length picks it, so that
  // every model is reached.
  const auto catalogue = actserve::Catalogue();
  parsed.request.model_name =
      std::string(catalogue[parsed.request.id.size() % catalogue.size()].name);
  const auto& inputs = parsed.request.inputs;
  absl::StatusOr<InferencePlan> plan =
      actserve::server::inference::PlanInference(parsed.request, TheEngine());
  if (!plan.ok()) return 0;
  for (const auto& input : inputs) {  // the plan checked each input's bytes
    const std::optional<actserve::DType> dtype =
        actserve::server::inference::ParseDatatype(input.datatype);
    if (!dtype.has_value()) std::abort();
    const absl::StatusOr<int64_t> elements = actserve::NumElements(input.shape);
    if (!elements.ok() ||
        input.data.size() != static_cast<size_t>(*elements) * actserve::DTypeSize(*dtype)) {
      std::abort();
    }
  }
  std::vector<std::string> buffers;
  std::vector<absl::Span<char>> spans;
  for (const auto& output : plan->outputs) buffers.emplace_back(output.bytes, '\0');
  for (std::string& buffer : buffers) spans.emplace_back(buffer.data(), buffer.size());
  if (!actserve::server::inference::RunInference(TheEngine(), *plan, spans, nullptr).ok()) {
    std::abort();  // the plan accepted it: computing must succeed
  }
  std::vector<RestOutput> outputs;
  for (size_t i = 0; i < plan->outputs.size(); ++i) {
    if (!plan->outputs[i].requested) continue;
    RestOutput output;
    output.name = plan->outputs[i].name;
    output.dtype = plan->outputs[i].dtype;
    output.shape = plan->outputs[i].shape;
    output.data = spans[i];
    output.binary = i % 2 == 1;
    outputs.push_back(output);
  }
  std::string response;
  const absl::Status written = actserve::server::inference::WriteInferResponse(
      {parsed.request.model_name, "1", parsed.request.id}, outputs, 0, &response);
  if (!written.ok()) {
    // Only a NaN or infinity in a JSON output may stop the writer.
    if (written.code() != absl::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  const nlohmann::json reread = nlohmann::json::parse(response, nullptr, false);
  if (reread.is_discarded() || !reread.contains("outputs") ||
      reread["outputs"].size() != outputs.size()) {
    std::abort();
  }
  return 0;
}
