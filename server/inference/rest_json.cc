// See rest_json.h.
#include "server/inference/rest_json.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"

namespace actserve {
namespace server {
namespace inference {
namespace {

using Json = nlohmann::json;

// Quoted user text in messages is cut here: names are short, and messages cross the wire.
constexpr size_t kQuotedBytes = 64;

std::string Quote(absl::string_view text) {
  if (text.size() <= kQuotedBytes) return absl::StrCat("'", text, "'");
  return absl::StrCat("'", text.substr(0, kQuotedBytes), "...'");
}

// What the next JSON value is, from the enclosing container and the last key read.
enum class Slot {
  kRequest,  // the document itself
  kId,
  kRequestParams,  // the value of request.parameters (an object)
  kInputs,
  kOutputs,
  kInput,   // an element of inputs
  kOutput,  // an element of outputs
  kInputName,
  kInputShape,
  kInputDatatype,
  kInputParams,
  kInputData,
  kOutputName,
  kOutputParams,
  kParamValue,  // a value inside a parameters object
  kDim,         // an element of a shape
  kDataValue,   // an element of a (nested) data array
  kSkip,        // an unknown field's value, or anything inside one
};

// The open containers, innermost last.
enum class Frame {
  kRequest,
  kRequestParams,
  kInputs,
  kInput,
  kInputParams,
  kShape,
  kData,
  kOutputs,
  kOutput,
  kOutputParams,
  kSkip,
};

// Fields of an object, to refuse repeated ones.
enum FieldBit : unsigned {
  kSeenId = 1u << 0,
  kSeenParams = 1u << 1,
  kSeenInputs = 1u << 2,
  kSeenOutputs = 1u << 3,
  kSeenName = 1u << 4,
  kSeenShape = 1u << 5,
  kSeenDatatype = 1u << 6,
  kSeenData = 1u << 7,
};

// Values per chunk of an input's data read before its shape and datatype: 64 KiB, below
// the buffer pool's smallest pooled size, whose buffers are mapped (and, with huge
// pages, faulted in) 2 MiB at a time.
constexpr int64_t kValuesPerChunk = int64_t{1} << 13;

// One input while it is parsed.
struct PendingInput {
  unsigned seen = 0;
  std::string name;
  std::vector<int64_t> shape;
  std::string datatype;
  std::optional<uint64_t> binary_data_size;
  int parameters = 0;
  // JSON data: written straight into `sink` when the shape and datatype came before the
  // data (every client we know writes them first), else kept as doubles until the end,
  // in chunks from the allocator (so that they count against the tensor memory limit,
  // and grow without a vector's doubling).
  std::optional<DType> sink_dtype;
  absl::Span<char> sink;
  int64_t sink_capacity = 0;                   // elements
  int64_t count = 0;                           // data values read
  std::vector<absl::Span<char>> value_chunks;  // kValuesPerChunk doubles each
};

struct PendingOutput {
  unsigned seen = 0;
  std::string name;
  std::optional<bool> binary_data;
  int parameters = 0;
};

void StoreValue(DType dtype, double value, char* out) {
  switch (dtype) {
    case DType::kFloat32: {
      const float narrow = static_cast<float>(value);
      std::memcpy(out, &narrow, sizeof(narrow));
      return;
    }
    case DType::kFloat64:
      std::memcpy(out, &value, sizeof(value));
      return;
    case DType::kFloat16: {
      const uint16_t bits = RoundToFloat16(value);
      std::memcpy(out, &bits, sizeof(bits));
      return;
    }
    case DType::kBFloat16: {
      const uint16_t bits = RoundToBFloat16(value);
      std::memcpy(out, &bits, sizeof(bits));
      return;
    }
    case DType::kUnspecified:
      return;
  }
}

// The nlohmann-json SAX interface. Every callback returns false to stop the parse, with
// `status_` saying why (a JSON syntax error arrives through parse_error).
class RequestReader {
 public:
  RequestReader(absl::string_view json, absl::string_view binary, const RestJsonLimits& limits,
                TensorAllocator allocate, RestInferRequest* parsed)
      : json_bytes_(json.size()),
        binary_(binary),
        limits_(limits),
        allocate_(allocate),
        parsed_(*parsed) {}

  absl::Status Finish(bool parsed_ok) {
    if (!status_.ok()) return status_;
    if (!parsed_ok) return absl::InvalidArgumentError("invalid JSON");
    if (binary_used_ != binary_.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("binary data: the inputs' binary_data_size parameters add up to ",
                       binary_used_, " bytes, but ", binary_.size(),
                       " bytes follow the JSON header (Inference-Header-Content-Length)"));
    }
    return absl::OkStatus();
  }

  // --- nlohmann::json_sax ---

  bool null() { return Scalar(ScalarKind::kNull); }
  bool boolean(bool value) {
    bool_ = value;
    return Scalar(ScalarKind::kBool);
  }
  bool number_integer(Json::number_integer_t value) {
    if (slot_ == Slot::kDataValue) {
      return DataValue(static_cast<double>(value));
    }
    int_ = value;
    return Scalar(ScalarKind::kInt);
  }
  bool number_unsigned(Json::number_unsigned_t value) {
    if (slot_ == Slot::kDataValue) {
      return DataValue(static_cast<double>(value));
    }
    if (value <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      int_ = static_cast<int64_t>(value);
      return Scalar(ScalarKind::kInt);
    }
    uint_ = value;
    return Scalar(ScalarKind::kUint);
  }
  bool number_float(Json::number_float_t value, const Json::string_t& /*text*/) {
    if (slot_ == Slot::kDataValue) return DataValue(value);
    double_ = value;
    return Scalar(ScalarKind::kDouble);
  }
  bool string(Json::string_t& value) {
    if (slot_ != Slot::kSkip && value.size() > limits_.max_string_bytes) {
      return Fail(absl::ResourceExhaustedError(
          absl::StrCat(Place(), ": a string of ", value.size(), " bytes; at most ",
                       limits_.max_string_bytes, " are accepted")));
    }
    string_ = &value;
    return Scalar(ScalarKind::kString);
  }
  bool binary(Json::binary_t& /*value*/) { return Scalar(ScalarKind::kNull); }

  bool start_object(std::size_t /*elements*/) {
    if (!Deeper()) return false;
    switch (slot_) {
      case Slot::kRequest:
        return Open(Frame::kRequest);
      case Slot::kRequestParams:
        return Open(Frame::kRequestParams);
      case Slot::kInput:
        if (static_cast<int>(inputs_.size()) >= limits_.max_tensors) {
          return Fail(absl::ResourceExhaustedError(absl::StrCat(
              "inputs: more than ", limits_.max_tensors, " inputs; a model has at most 3")));
        }
        inputs_.emplace_back();
        return Open(Frame::kInput);
      case Slot::kOutput:
        if (static_cast<int>(outputs_.size()) >= limits_.max_tensors) {
          return Fail(absl::ResourceExhaustedError(absl::StrCat(
              "outputs: more than ", limits_.max_tensors, " outputs; a model has at most 3")));
        }
        outputs_.emplace_back();
        return Open(Frame::kOutput);
      case Slot::kInputParams:
        return Open(Frame::kInputParams);
      case Slot::kOutputParams:
        return Open(Frame::kOutputParams);
      case Slot::kSkip:
        return Open(Frame::kSkip);
      default:
        return WrongType("an object");
    }
  }

  bool end_object() {
    const Frame frame = frames_.back();
    frames_.pop_back();
    if (frame == Frame::kInput && !FinishInput()) return false;
    if (frame == Frame::kOutput && !FinishOutput()) return false;
    AfterValue();
    return true;
  }

  bool start_array(std::size_t /*elements*/) {
    if (!Deeper()) return false;
    switch (slot_) {
      case Slot::kInputs:
        return Open(Frame::kInputs);
      case Slot::kOutputs:
        return Open(Frame::kOutputs);
      case Slot::kInputShape:
        return Open(Frame::kShape);
      case Slot::kInputData:
        if (!StartData()) return false;
        return Open(Frame::kData);
      case Slot::kDataValue:
        return Open(Frame::kData);
      case Slot::kSkip:
        return Open(Frame::kSkip);
      default:
        return WrongType("an array");
    }
  }

  bool end_array() {
    frames_.pop_back();
    AfterValue();
    return true;
  }

  bool key(Json::string_t& name) {
    const Frame frame = frames_.back();
    switch (frame) {
      case Frame::kRequest:
        if (name == "id") return Field(kSeenId, Slot::kId, name);
        if (name == "parameters") return Field(kSeenParams, Slot::kRequestParams, name);
        if (name == "inputs") return Field(kSeenInputs, Slot::kInputs, name);
        if (name == "outputs") return Field(kSeenOutputs, Slot::kOutputs, name);
        slot_ = Slot::kSkip;  // e.g. Triton clients' "model_name"
        return true;
      case Frame::kInput:
        if (name == "name") return Field(kSeenName, Slot::kInputName, name);
        if (name == "shape") return Field(kSeenShape, Slot::kInputShape, name);
        if (name == "datatype") return Field(kSeenDatatype, Slot::kInputDatatype, name);
        if (name == "parameters") return Field(kSeenParams, Slot::kInputParams, name);
        if (name == "data") return Field(kSeenData, Slot::kInputData, name);
        slot_ = Slot::kSkip;
        return true;
      case Frame::kOutput:
        if (name == "name") return Field(kSeenName, Slot::kOutputName, name);
        if (name == "parameters") return Field(kSeenParams, Slot::kOutputParams, name);
        slot_ = Slot::kSkip;
        return true;
      case Frame::kRequestParams:
      case Frame::kInputParams:
      case Frame::kOutputParams:
        return ParameterName(frame, name);
      default:  // kSkip
        return true;
    }
  }

  bool parse_error(std::size_t position, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& error) {
    if (!status_.ok()) return false;  // our own refusal already says why
    // nlohmann's text: "[json.exception.parse_error.101] parse error at line 1, column 5:
    // syntax error while parsing value - invalid literal; last read: '...'"; the part
    // after the position is the reason.
    absl::string_view what = error.what();
    const size_t column = what.find("column ");
    const size_t colon = what.find(": ", column == absl::string_view::npos ? 0 : column);
    absl::string_view reason = colon == absl::string_view::npos ? what : what.substr(colon + 2);
    if (reason.size() > 200) reason = reason.substr(0, 200);
    status_ =
        absl::InvalidArgumentError(absl::StrCat("invalid JSON at byte ", position, ": ", reason));
    return false;
  }

 private:
  enum class ScalarKind { kNull, kBool, kInt, kUint, kDouble, kString };

  static absl::string_view KindName(ScalarKind kind) {
    switch (kind) {
      case ScalarKind::kNull:
        return "null";
      case ScalarKind::kBool:
        return "a boolean";
      case ScalarKind::kInt:
      case ScalarKind::kUint:
        return "an integer";
      case ScalarKind::kDouble:
        return "a number";
      case ScalarKind::kString:
        return "a string";
    }
    return "a value";
  }

  bool Fail(absl::Status status) {
    status_ = std::move(status);
    return false;
  }

  // The place of the value being read, for messages: "inputs[1].shape[2]".
  std::string Place() const {
    switch (slot_) {
      case Slot::kRequest:
        return "the request";
      case Slot::kId:
        return "id";
      case Slot::kRequestParams:
        return "parameters";
      case Slot::kInputs:
        return "inputs";
      case Slot::kOutputs:
        return "outputs";
      case Slot::kInput:
        return absl::StrCat("inputs[", inputs_.size(), "]");
      case Slot::kOutput:
        return absl::StrCat("outputs[", outputs_.size(), "]");
      case Slot::kInputName:
        return absl::StrCat(InputPlace(), ".name");
      case Slot::kInputShape:
        return absl::StrCat(InputPlace(), ".shape");
      case Slot::kInputDatatype:
        return absl::StrCat(InputPlace(), ".datatype");
      case Slot::kInputParams:
        return absl::StrCat(InputPlace(), ".parameters");
      case Slot::kInputData:
      case Slot::kDataValue:
        return absl::StrCat(InputPlace(), ".data");
      case Slot::kOutputName:
        return absl::StrCat(OutputPlace(), ".name");
      case Slot::kOutputParams:
        return absl::StrCat(OutputPlace(), ".parameters");
      case Slot::kParamValue:
        return ParamPlace();
      case Slot::kDim:
        return absl::StrCat(InputPlace(), ".shape[", inputs_.back().shape.size(), "]");
      case Slot::kSkip:
        return "an unknown field";
    }
    return "the request";
  }
  std::string InputPlace() const { return absl::StrCat("inputs[", inputs_.size() - 1, "]"); }
  std::string OutputPlace() const { return absl::StrCat("outputs[", outputs_.size() - 1, "]"); }
  std::string ParamPlace() const {
    switch (frames_.back()) {
      case Frame::kInputParams:
        return absl::StrCat(InputPlace(), ".parameters.", param_name_);
      case Frame::kOutputParams:
        return absl::StrCat(OutputPlace(), ".parameters.", param_name_);
      default:
        return absl::StrCat("parameters.", param_name_);
    }
  }

  bool WrongType(absl::string_view got) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat(Place(), ": expected ", Expected(), ", got ", got)));
  }
  absl::string_view Expected() const {
    switch (slot_) {
      case Slot::kRequest:
      case Slot::kRequestParams:
      case Slot::kInput:
      case Slot::kOutput:
      case Slot::kInputParams:
      case Slot::kOutputParams:
        return "an object";
      case Slot::kInputs:
      case Slot::kOutputs:
      case Slot::kInputShape:
      case Slot::kInputData:
        return "an array";
      case Slot::kId:
      case Slot::kInputName:
      case Slot::kInputDatatype:
      case Slot::kOutputName:
        return "a string";
      case Slot::kParamValue:
        return "a string, number or boolean";
      case Slot::kDim:
        return "a non-negative integer";
      case Slot::kDataValue:
        return "a number or an array";
      case Slot::kSkip:
        return "a value";
    }
    return "a value";
  }

  bool Deeper() {
    // frames_ holds the document's containers; the new one makes it one deeper.
    if (static_cast<int>(frames_.size()) + 1 > limits_.max_depth) {
      return Fail(absl::ResourceExhaustedError(
          absl::StrCat(Place(), ": the JSON nests deeper than ", limits_.max_depth, " levels")));
    }
    return true;
  }

  bool Open(Frame frame) {
    frames_.push_back(frame);
    slot_ = SlotInside(frame);
    return true;
  }

  // The slot of the values directly inside `frame` (for objects: until a key is read).
  static Slot SlotInside(Frame frame) {
    switch (frame) {
      case Frame::kInputs:
        return Slot::kInput;
      case Frame::kOutputs:
        return Slot::kOutput;
      case Frame::kShape:
        return Slot::kDim;
      case Frame::kData:
        return Slot::kDataValue;
      case Frame::kRequestParams:
      case Frame::kInputParams:
      case Frame::kOutputParams:
        return Slot::kParamValue;
      case Frame::kSkip:
        return Slot::kSkip;
      default:
        return Slot::kSkip;  // objects: set by key()
    }
  }

  // After a value, the enclosing container's next value has the container's slot.
  void AfterValue() {
    if (frames_.empty()) {
      slot_ = Slot::kSkip;  // nothing may follow; strict parsing refuses it
      return;
    }
    slot_ = SlotInside(frames_.back());
  }

  bool Field(unsigned bit, Slot slot, absl::string_view name) {
    unsigned& seen = frames_.back() == Frame::kRequest ? request_seen_
                     : frames_.back() == Frame::kInput ? inputs_.back().seen
                                                       : outputs_.back().seen;
    if (seen & bit) {
      const std::string owner = frames_.back() == Frame::kRequest ? "the request"
                                : frames_.back() == Frame::kInput ? InputPlace()
                                                                  : OutputPlace();
      return Fail(
          absl::InvalidArgumentError(absl::StrCat(owner, ": field \"", name, "\" given twice")));
    }
    seen |= bit;
    slot_ = slot;
    return true;
  }

  bool ParameterName(Frame frame, const std::string& name) {
    int& count = frame == Frame::kInputParams    ? inputs_.back().parameters
                 : frame == Frame::kOutputParams ? outputs_.back().parameters
                                                 : request_parameters_;
    if (++count > limits_.max_parameters) {
      const std::string owner = frame == Frame::kInputParams    ? InputPlace()
                                : frame == Frame::kOutputParams ? OutputPlace()
                                                                : std::string("the request");
      return Fail(absl::ResourceExhaustedError(
          absl::StrCat(owner, ": more than ", limits_.max_parameters, " parameters")));
    }
    if (name.size() > limits_.max_string_bytes) {
      return Fail(absl::ResourceExhaustedError(
          absl::StrCat("a parameter name of ", name.size(), " bytes; at most ",
                       limits_.max_string_bytes, " are accepted")));
    }
    param_name_ = name;
    slot_ = Slot::kParamValue;
    return true;
  }

  bool Scalar(ScalarKind kind) {
    switch (slot_) {
      case Slot::kSkip:
        AfterValue();
        return true;
      case Slot::kId:
        if (kind != ScalarKind::kString) return WrongType(KindName(kind));
        parsed_.request.id = std::move(*string_);
        break;
      case Slot::kInputName:
        if (kind != ScalarKind::kString) return WrongType(KindName(kind));
        inputs_.back().name = std::move(*string_);
        break;
      case Slot::kInputDatatype:
        if (kind != ScalarKind::kString) return WrongType(KindName(kind));
        inputs_.back().datatype = std::move(*string_);
        break;
      case Slot::kOutputName:
        if (kind != ScalarKind::kString) return WrongType(KindName(kind));
        outputs_.back().name = std::move(*string_);
        break;
      case Slot::kDim:
        if (!Dimension(kind)) return false;
        break;
      case Slot::kDataValue:
        return Fail(absl::InvalidArgumentError(
            absl::StrCat(InputPlace(), ".data[", inputs_.back().count, "]: ", KindName(kind),
                         "; tensor data must be numbers")));
      case Slot::kParamValue:
        if (!ParameterValue(kind)) return false;
        break;
      default:
        return WrongType(KindName(kind));
    }
    AfterValue();
    return true;
  }

  bool Dimension(ScalarKind kind) {
    PendingInput& input = inputs_.back();
    if (limits_.max_rank > 0 && static_cast<int>(input.shape.size()) >= limits_.max_rank) {
      return Fail(absl::ResourceExhaustedError(absl::StrCat(
          InputPlace(), ".shape: more than ", limits_.max_rank, " dimensions (--max_rank)")));
    }
    if (kind == ScalarKind::kUint) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat(Place(), ": ", uint_, " is too large for a dimension")));
    }
    if (kind != ScalarKind::kInt) return WrongType(KindName(kind));
    if (int_ < 0) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat(Place(), ": ", int_, " is negative; dimensions are >= 0")));
    }
    input.shape.push_back(int_);
    return true;
  }

  bool ParameterValue(ScalarKind kind) {
    const Frame frame = frames_.back();
    if (frame == Frame::kInputParams) {
      if (param_name_ != "binary_data_size") {
        return Fail(absl::InvalidArgumentError(
            absl::StrCat(InputPlace(), ".parameters: unknown parameter ", Quote(param_name_),
                         "; an input takes only binary_data_size")));
      }
      if (inputs_.back().binary_data_size.has_value()) {
        return Fail(absl::InvalidArgumentError(absl::StrCat(ParamPlace(), ": given twice")));
      }
      if (kind == ScalarKind::kInt && int_ >= 0) {
        inputs_.back().binary_data_size = static_cast<uint64_t>(int_);
      } else if (kind == ScalarKind::kUint) {
        inputs_.back().binary_data_size = uint_;
      } else {
        return Fail(absl::InvalidArgumentError(absl::StrCat(
            ParamPlace(), ": expected a non-negative integer, got ",
            kind == ScalarKind::kInt ? absl::StrCat(int_) : std::string(KindName(kind)))));
      }
      return true;
    }
    if (frame == Frame::kOutputParams) {
      if (param_name_ != "binary_data") {
        return Fail(absl::InvalidArgumentError(
            absl::StrCat(OutputPlace(), ".parameters: unknown parameter ", Quote(param_name_),
                         "; an output takes only binary_data")));
      }
      if (kind != ScalarKind::kBool) {
        return Fail(absl::InvalidArgumentError(
            absl::StrCat(ParamPlace(), ": expected a boolean, got ", KindName(kind))));
      }
      if (outputs_.back().binary_data.has_value()) {
        return Fail(absl::InvalidArgumentError(absl::StrCat(ParamPlace(), ": given twice")));
      }
      outputs_.back().binary_data = bool_;
      return true;
    }
    // The request's parameters: kept for PlanInference, which knows the model's.
    Parameter parameter;
    parameter.name = param_name_;
    switch (kind) {
      case ScalarKind::kBool:
        parameter.value = bool_;
        break;
      case ScalarKind::kInt:
        parameter.value = int_;
        break;
      case ScalarKind::kUint:
        parameter.value = uint_;
        break;
      case ScalarKind::kDouble:
        parameter.value = double_;
        break;
      case ScalarKind::kString:
        parameter.value = std::move(*string_);
        break;
      case ScalarKind::kNull:
        return Fail(absl::InvalidArgumentError(
            absl::StrCat(ParamPlace(), ": expected a string, number or boolean, got null")));
    }
    if (param_name_ == "binary_data_output") {
      if (kind != ScalarKind::kBool) {
        return Fail(absl::InvalidArgumentError(
            absl::StrCat(ParamPlace(), ": expected a boolean, got ", KindName(kind))));
      }
      parsed_.binary_data_output = bool_;
    }
    parsed_.request.parameters.push_back(std::move(parameter));
    return true;
  }

  // The first `[` of an input's data: decides where its values go.
  bool StartData() {
    PendingInput& input = inputs_.back();
    if (!(input.seen & kSeenShape) || !(input.seen & kSeenDatatype)) return true;
    const std::optional<DType> dtype = ParseDatatype(input.datatype);
    if (!dtype.has_value()) return true;  // refused with its message at the input's end
    const absl::StatusOr<int64_t> elements = NumElements(input.shape);
    if (!elements.ok()) return true;
    // Each value takes at least two bytes of JSON ("1,"): a shape asking for more than
    // the header can hold cannot be matched by its data, and is refused now, before its
    // values cost anything.
    if (*elements > static_cast<int64_t>(json_bytes_ / 2 + 1)) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(
          InputPlace(), ".data: shape ", ShapeToString(input.shape), " needs ", *elements,
          " values, more than the request's ", json_bytes_, " bytes of JSON can hold")));
    }
    absl::StatusOr<absl::Span<char>> memory =
        allocate_(static_cast<size_t>(*elements) * DTypeSize(*dtype));
    if (!memory.ok()) return Fail(memory.status());
    input.sink_dtype = dtype;
    input.sink = *memory;
    input.sink_capacity = *elements;
    return true;
  }

  bool DataValue(double value) {
    PendingInput& input = inputs_.back();
    if (input.sink_dtype.has_value()) {
      if (input.count == input.sink_capacity) {
        return Fail(absl::InvalidArgumentError(
            absl::StrCat(InputPlace(), ".data: more than the ", input.sink_capacity,
                         " values of shape ", ShapeToString(input.shape))));
      }
      const size_t width = DTypeSize(*input.sink_dtype);
      StoreValue(*input.sink_dtype, value, input.sink.data() + input.count * width);
    } else {
      const int64_t in_chunk = input.count % kValuesPerChunk;
      if (in_chunk == 0) {
        absl::StatusOr<absl::Span<char>> chunk = allocate_(kValuesPerChunk * sizeof(double));
        if (!chunk.ok()) return Fail(chunk.status());
        input.value_chunks.push_back(*chunk);
      }
      std::memcpy(input.value_chunks.back().data() + in_chunk * sizeof(double), &value,
                  sizeof(double));
    }
    ++input.count;
    return true;
  }

  bool FinishInput() {
    PendingInput& input = inputs_.back();
    const std::string place = InputPlace();
    if (!(input.seen & kSeenName)) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(place, ": no name")));
    }
    if (!(input.seen & kSeenShape)) {
      return Fail(
          absl::InvalidArgumentError(absl::StrCat(place, " (", Quote(input.name), "): no shape")));
    }
    if (!(input.seen & kSeenDatatype)) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat(place, " (", Quote(input.name), "): no datatype")));
    }
    const bool has_data = (input.seen & kSeenData) != 0;
    if (has_data && input.binary_data_size.has_value()) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat(place, " (", Quote(input.name),
                       "): both data and parameters.binary_data_size; give one")));
    }
    if (!has_data && !input.binary_data_size.has_value()) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(
          place, " (", Quote(input.name),
          "): no data; give data, or parameters.binary_data_size and the bytes after the "
          "JSON header")));
    }
    InputTensor tensor;
    tensor.name = std::move(input.name);
    tensor.datatype = std::move(input.datatype);
    tensor.shape = std::move(input.shape);
    if (input.binary_data_size.has_value()) {
      const uint64_t size = *input.binary_data_size;
      if (size > binary_.size() - binary_used_) {
        return Fail(absl::InvalidArgumentError(absl::StrCat(
            place, ".parameters.binary_data_size: ", size, " bytes, but only ",
            binary_.size() - binary_used_, " bytes of binary data are left after the JSON ",
            "header", binary_.empty() ? " (no Inference-Header-Content-Length header)" : "")));
      }
      tensor.data = absl::Span<const char>(binary_.data() + binary_used_, size);
      binary_used_ += size;
    } else {
      const std::optional<DType> dtype = ParseDatatype(tensor.datatype);
      if (!dtype.has_value()) {
        return Fail(absl::InvalidArgumentError(
            absl::StrCat(place, ".datatype: ", Quote(tensor.datatype),
                         " is not supported; actserve computes FP32, FP64, FP16 and BF16")));
      }
      const absl::StatusOr<int64_t> elements = NumElements(tensor.shape);
      if (!elements.ok()) {
        return Fail(absl::InvalidArgumentError(
            absl::StrCat(place, ".shape: ", elements.status().message())));
      }
      if (input.count != *elements) {
        return Fail(absl::InvalidArgumentError(
            absl::StrCat(place, ".data: ", input.count, " values, but shape ",
                         ShapeToString(tensor.shape), " needs ", *elements)));
      }
      if (input.sink_dtype.has_value()) {
        tensor.data = input.sink;
      } else {
        const size_t width = DTypeSize(*dtype);
        absl::StatusOr<absl::Span<char>> memory =
            allocate_(static_cast<size_t>(input.count) * width);
        if (!memory.ok()) return Fail(memory.status());
        for (int64_t i = 0; i < input.count; ++i) {
          double value;
          std::memcpy(&value,
                      input.value_chunks[i / kValuesPerChunk].data() +
                          (i % kValuesPerChunk) * sizeof(double),
                      sizeof(double));
          StoreValue(*dtype, value, memory->data() + i * width);
        }
        tensor.data = *memory;
      }
    }
    parsed_.request.inputs.push_back(std::move(tensor));
    return true;
  }

  bool FinishOutput() {
    PendingOutput& output = outputs_.back();
    if (!(output.seen & kSeenName)) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(OutputPlace(), ": no name")));
    }
    parsed_.request.outputs.push_back(std::move(output.name));
    parsed_.output_binary.push_back(output.binary_data);
    return true;
  }

  const size_t json_bytes_;
  const absl::string_view binary_;
  const RestJsonLimits& limits_;
  TensorAllocator allocate_;
  RestInferRequest& parsed_;

  absl::Status status_;
  std::vector<Frame> frames_;
  Slot slot_ = Slot::kRequest;
  unsigned request_seen_ = 0;
  int request_parameters_ = 0;
  std::vector<PendingInput> inputs_;
  std::vector<PendingOutput> outputs_;
  std::string param_name_;
  uint64_t binary_used_ = 0;
  // The scalar being dispatched.
  bool bool_ = false;
  int64_t int_ = 0;
  uint64_t uint_ = 0;
  double double_ = 0;
  std::string* string_ = nullptr;
};

void AppendJsonString(absl::string_view text, std::string* out) {
  // Valid UTF-8 passes through; control characters, quotes and backslashes are escaped.
  out->push_back('"');
  for (const char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (u < 0x20) {
      static constexpr char kHex[] = "0123456789abcdef";
      out->append("\\u00");
      out->push_back(kHex[u >> 4]);
      out->push_back(kHex[u & 15]);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

void AppendShape(absl::Span<const int64_t> shape, std::string* out) {
  out->push_back('[');
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out->push_back(',');
    absl::StrAppend(out, shape[i]);
  }
  out->push_back(']');
}

double HalfToDouble(DType dtype, uint16_t bits) {
  return dtype == DType::kFloat16 ? Float16ToDouble(bits) : BFloat16ToDouble(bits);
}
uint16_t DoubleToHalf(DType dtype, double value) {
  return dtype == DType::kFloat16 ? RoundToFloat16(value) : RoundToBFloat16(value);
}

// Writes a shortest text of the value into [first, last) and returns its end; nullptr
// for NaN and infinities. `last - first` must be at least 32.
char* FormatNumber(DType dtype, const char* data, char* first, char* last) {
  switch (dtype) {
    case DType::kFloat32: {
      float value;
      std::memcpy(&value, data, sizeof(value));
      if (!std::isfinite(value)) return nullptr;
      return std::to_chars(first, last, value).ptr;
    }
    case DType::kFloat64: {
      double value;
      std::memcpy(&value, data, sizeof(value));
      if (!std::isfinite(value)) return nullptr;
      return std::to_chars(first, last, value).ptr;
    }
    case DType::kFloat16:
    case DType::kBFloat16: {
      uint16_t bits;
      std::memcpy(&bits, data, sizeof(bits));
      const double value = HalfToDouble(dtype, bits);
      if (!std::isfinite(value)) return nullptr;
      // A half has at most 5 significant decimal digits, a bfloat16 at most 4; the
      // shortest correctly rounded text that reads back as the same bits wins.
      for (int precision = 1; precision < 17; ++precision) {
        char* end = std::to_chars(first, last, value, std::chars_format::general, precision).ptr;
        *end = '\0';
        if (DoubleToHalf(dtype, std::strtod(first, nullptr)) == bits) return end;
      }
      return std::to_chars(first, last, value).ptr;
    }
    case DType::kUnspecified:
      break;
  }
  return nullptr;
}

// The JSON reader builds each string whole before handing it over, growing its buffer
// as it goes: one string of the whole body would cost several times the body. So the
// strings' lengths are checked first, in one pass that allocates nothing.
absl::Status CheckStringLengths(absl::string_view json, size_t max_bytes) {
  const char* p = json.data();
  const char* const end = p + json.size();
  while (true) {
    p = static_cast<const char*>(std::memchr(p, '"', static_cast<size_t>(end - p)));
    if (p == nullptr) return absl::OkStatus();
    const char* const start = ++p;
    while (p < end && *p != '"') p += *p == '\\' ? 2 : 1;
    if (static_cast<size_t>(std::min(p, end) - start) > max_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("a JSON string at byte ", start - json.data(), " is longer than the ",
                       max_bytes, " bytes a name, an id or a parameter may have"));
    }
    if (p >= end) return absl::OkStatus();  // unterminated: the parser says so
    ++p;
  }
}

}  // namespace

absl::Status ParseInferRequest(absl::string_view json, absl::string_view binary,
                               const RestJsonLimits& limits, TensorAllocator allocate,
                               RestInferRequest* parsed) {
  *parsed = RestInferRequest();
  if (absl::Status lengths = CheckStringLengths(json, limits.max_string_bytes); !lengths.ok()) {
    return lengths;
  }
  RequestReader reader(json, binary, limits, allocate, parsed);
  const bool ok = Json::sax_parse(json.data(), json.data() + json.size(), &reader,
                                  nlohmann::detail::input_format_t::json, /*strict=*/true);
  return reader.Finish(ok);
}

absl::Status WriteInferResponse(const RestResponseInfo& info, absl::Span<const RestOutput> outputs,
                                size_t max_body_bytes, std::string* json) {
  json->clear();
  size_t binary_bytes = 0;
  size_t json_values = 0;
  for (const RestOutput& output : outputs) {
    if (output.binary) {
      binary_bytes += output.data.size();
    } else {
      json_values += output.data.size() / DTypeSize(output.dtype);
    }
  }
  const auto too_large = [&] {
    return absl::ResourceExhaustedError(
        absl::StrCat("the response would be larger than the ", max_body_bytes,
                     " bytes allowed (--max_message_bytes); ask for binary outputs "
                     "(parameters.binary_data_output) or send fewer elements"));
  };
  // Each JSON value takes at least two bytes ("0,"): refuse a hopeless response at once.
  if (max_body_bytes > 0 && binary_bytes + 2 * json_values > max_body_bytes) return too_large();
  json->reserve(256 + json_values * 12);
  json->append("{\"model_name\":");
  AppendJsonString(info.model_name, json);
  json->append(",\"model_version\":");
  AppendJsonString(info.model_version, json);
  if (!info.id.empty()) {
    json->append(",\"id\":");
    AppendJsonString(info.id, json);
  }
  json->append(",\"outputs\":[");
  for (size_t o = 0; o < outputs.size(); ++o) {
    const RestOutput& output = outputs[o];
    if (o > 0) json->push_back(',');
    json->append("{\"name\":");
    AppendJsonString(output.name, json);
    json->append(",\"datatype\":");
    AppendJsonString(DatatypeName(output.dtype), json);
    json->append(",\"shape\":");
    AppendShape(output.shape, json);
    if (output.binary) {
      absl::StrAppend(json, ",\"parameters\":{\"binary_data_size\":", output.data.size(), "}}");
      continue;
    }
    json->append(",\"data\":[");
    const size_t width = DTypeSize(output.dtype);
    const size_t count = output.data.size() / width;
    char text[48];
    for (size_t i = 0; i < count; ++i) {
      char* end =
          FormatNumber(output.dtype, output.data.data() + i * width, text, text + sizeof(text) - 1);
      if (end == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("outputs[", o, "] (", output.name, "): element ", i,
                         " is NaN or infinite, which JSON numbers cannot carry; ask for binary "
                         "outputs (parameters.binary_data_output, or the output's binary_data)"));
      }
      if (i > 0) json->push_back(',');
      json->append(text, end);
      if (max_body_bytes > 0 && json->size() + binary_bytes > max_body_bytes) {
        return too_large();
      }
    }
    json->append("]}");
  }
  json->append("]}");
  if (max_body_bytes > 0 && json->size() + binary_bytes > max_body_bytes) return too_large();
  return absl::OkStatus();
}

std::string ServerMetadataJson(absl::string_view name, absl::string_view version,
                               absl::Span<const absl::string_view> extensions) {
  std::string json = "{\"name\":";
  AppendJsonString(name, &json);
  json.append(",\"version\":");
  AppendJsonString(version, &json);
  json.append(",\"extensions\":[");
  for (size_t i = 0; i < extensions.size(); ++i) {
    if (i > 0) json.push_back(',');
    AppendJsonString(extensions[i], &json);
  }
  json.append("]}");
  return json;
}

std::string ModelMetadataJson(const ModelMetadata& metadata) {
  std::string json = "{\"name\":";
  AppendJsonString(metadata.name, &json);
  json.append(",\"versions\":[");
  for (size_t i = 0; i < metadata.versions.size(); ++i) {
    if (i > 0) json.push_back(',');
    AppendJsonString(metadata.versions[i], &json);
  }
  json.append("],\"platform\":");
  AppendJsonString(metadata.platform, &json);
  const auto append_tensors = [&json](absl::Span<const TensorMetadata> tensors) {
    json.push_back('[');
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (i > 0) json.push_back(',');
      json.append("{\"name\":");
      AppendJsonString(tensors[i].name, &json);
      json.append(",\"datatype\":");
      AppendJsonString(tensors[i].datatype, &json);
      json.append(",\"shape\":");
      AppendShape(tensors[i].shape, &json);
      json.push_back('}');
    }
    json.push_back(']');
  };
  json.append(",\"inputs\":");
  append_tensors(metadata.inputs);
  json.append(",\"outputs\":");
  append_tensors(metadata.outputs);
  json.push_back('}');
  return json;
}

std::string ErrorJson(absl::string_view message) {
  std::string text(message);
  if (text.size() > kMaxErrorMessageBytes) {
    size_t cut = kMaxErrorMessageBytes - 3;
    // Back to the start of a UTF-8 character: continuation bytes are 10xxxxxx.
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text.resize(cut);
    text.append("...");
  }
  // dump with `replace` turns any invalid UTF-8 (a client's bytes quoted in a message)
  // into U+FFFD instead of throwing.
  return Json{{"error", text}}.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::optional<std::string> FormatJsonNumber(DType dtype, uint64_t bits) {
  char data[8];
  std::memcpy(data, &bits, sizeof(data));  // little-endian: the low bytes first
  char text[48];
  char* end = FormatNumber(dtype, data, text, text + sizeof(text) - 1);
  if (end == nullptr) return std::nullopt;
  return std::string(text, end);
}

}  // namespace inference
}  // namespace server
}  // namespace actserve
