// The REST JSON codec (server/inference/rest_json.h) without a server: every class of
// malformed request is refused with its code and a message naming the place, values
// reach the tensors exactly as a correctly rounded conversion gives them, and every
// output value written as JSON reads back as exactly the same bits.
#include "server/inference/rest_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace actserve {
namespace server {
namespace inference {
namespace {

using ::testing::HasSubstr;

// Owns the memory the codec asks for, and counts it.
struct Memory {
  std::vector<std::unique_ptr<std::vector<char>>> blocks;
  size_t bytes = 0;
  absl::StatusOr<absl::Span<char>> Allocate(size_t size) {
    blocks.push_back(std::make_unique<std::vector<char>>(size));
    bytes += size;
    return absl::Span<char>(blocks.back()->data(), size);
  }
};

struct Parsed {
  absl::Status status;
  RestInferRequest request;
  Memory memory;
};

std::unique_ptr<Parsed> Parse(const std::string& json, const std::string& binary = "",
                              RestJsonLimits limits = RestJsonLimits{}) {
  auto parsed = std::make_unique<Parsed>();
  Memory* memory = &parsed->memory;
  parsed->status = ParseInferRequest(
      json, binary, limits, [memory](size_t size) { return memory->Allocate(size); },
      &parsed->request);
  return parsed;
}

template <typename T>
std::vector<T> Values(absl::Span<const char> data) {
  std::vector<T> values(data.size() / sizeof(T));
  std::memcpy(values.data(), data.data(), values.size() * sizeof(T));
  return values;
}

TEST(RestJsonTest, ReadsEveryFieldOfARequest) {
  const std::unique_ptr<Parsed> parsed = Parse(R"({
    "id": "req-7", "model_name": {"ignored": [1, {"deep": true}]},
    "parameters": {"approximate": "tanh", "negative_slope": 0.5, "dim": -1,
                   "big": 18446744073709551615, "flag": false, "binary_data_output": true},
    "inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32",
                "data": [[0.1, -2], [3e-39, 16777217]]}],
    "outputs": [{"name": "y", "parameters": {"binary_data": false}}, {"name": "dx"}]})");
  ASSERT_TRUE(parsed->status.ok()) << parsed->status;
  const InferRequest& request = parsed->request.request;
  EXPECT_EQ(request.id, "req-7");
  ASSERT_EQ(request.parameters.size(), 6u);
  EXPECT_EQ(std::get<std::string>(request.parameters[0].value), "tanh");
  EXPECT_EQ(std::get<double>(request.parameters[1].value), 0.5);
  EXPECT_EQ(std::get<int64_t>(request.parameters[2].value), -1);
  EXPECT_EQ(std::get<uint64_t>(request.parameters[3].value), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(std::get<bool>(request.parameters[4].value), false);
  EXPECT_TRUE(parsed->request.binary_data_output);
  ASSERT_EQ(request.inputs.size(), 1u);
  EXPECT_EQ(request.inputs[0].name, "x");
  EXPECT_EQ(request.inputs[0].datatype, "FP32");
  EXPECT_EQ(request.inputs[0].shape, (std::vector<int64_t>{2, 2}));
  // Each value is the float nearest the decimal (3e-39 a subnormal; 16777217 rounds to
  // even, 16777216).
  EXPECT_EQ(Values<float>(request.inputs[0].data),
            (std::vector<float>{0.1f, -2.0f, 3e-39f, 16777216.0f}));
  EXPECT_EQ(request.outputs, (std::vector<std::string>{"y", "dx"}));
  ASSERT_EQ(parsed->request.output_binary.size(), 2u);
  EXPECT_EQ(parsed->request.output_binary[0], std::optional<bool>(false));
  EXPECT_EQ(parsed->request.output_binary[1], std::nullopt);
}

TEST(RestJsonTest, RoundsJsonNumbersOnceToEveryDatatype) {
  for (const char* datatype : {"FP64", "FP16", "BF16"}) {
    SCOPED_TRACE(datatype);
    const std::unique_ptr<Parsed> parsed =
        Parse(absl::StrCat(R"({"inputs":[{"name":"x","shape":[4],"datatype":")", datatype,
                           R"(","data":[0.1,-1e-7,65519.99,3]}]})"));
    ASSERT_TRUE(parsed->status.ok()) << parsed->status;
    const absl::Span<const char> data = parsed->request.request.inputs[0].data;
    const double decimals[] = {0.1, -1e-7, 65519.99, 3};
    if (std::string(datatype) == "FP64") {
      EXPECT_EQ(Values<double>(data), std::vector<double>(decimals, decimals + 4));
      continue;
    }
    const std::vector<uint16_t> bits = Values<uint16_t>(data);
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(bits[i], std::string(datatype) == "FP16" ? RoundToFloat16(decimals[i])
                                                         : RoundToBFloat16(decimals[i]));
    }
  }
  // 65519.99 is below half-way to 65536 in binary16: the largest half, not infinity.
  EXPECT_EQ(RoundToFloat16(65519.99), 0x7BFF);
}

TEST(RestJsonTest, DataBeforeShapeAndDatatypeGivesTheSameTensor) {
  const std::unique_ptr<Parsed> after =
      Parse(R"({"inputs":[{"name":"x","shape":[3],"datatype":"FP16","data":[1.5,-0.25,7]}]})");
  const std::unique_ptr<Parsed> before = Parse(
      R"({"inputs":[{"data":[[1.5],[-0.25],[7]],"datatype":"FP16","name":"x","shape":[3]}]})");
  ASSERT_TRUE(after->status.ok()) << after->status;
  ASSERT_TRUE(before->status.ok()) << before->status;
  EXPECT_EQ(Values<uint16_t>(after->request.request.inputs[0].data),
            Values<uint16_t>(before->request.request.inputs[0].data));
  EXPECT_EQ(after->memory.bytes, 6u);
  // Data first: one chunk of doubles until the datatype is known, then the tensor.
  EXPECT_EQ(before->memory.bytes, (size_t{1} << 13) * sizeof(double) + 6u);
}

TEST(RestJsonTest, BinaryInputsViewTheBytesAfterTheHeaderInInputOrder) {
  std::string binary(12 + 16, '\0');
  const float x[3] = {1, -2, 0.5f};
  const double dy[2] = {0.25, 4};
  std::memcpy(&binary[0], x, 12);
  std::memcpy(&binary[12], dy, 16);
  const std::unique_ptr<Parsed> parsed = Parse(
      R"({"inputs":[{"name":"x","shape":[3],"datatype":"FP32","parameters":{"binary_data_size":12}},
                    {"name":"dy","shape":[2],"datatype":"FP64","parameters":{"binary_data_size":16}}]})",
      binary);
  ASSERT_TRUE(parsed->status.ok()) << parsed->status;
  const auto& inputs = parsed->request.request.inputs;
  ASSERT_EQ(inputs.size(), 2u);
  EXPECT_EQ(inputs[0].data.data(), binary.data());  // no copy
  EXPECT_EQ(inputs[0].data.size(), 12u);
  EXPECT_EQ(inputs[1].data.data(), binary.data() + 12);
  EXPECT_EQ(Values<double>(inputs[1].data), (std::vector<double>{0.25, 4}));
  EXPECT_EQ(parsed->memory.bytes, 0u);
}

struct BadCase {
  const char* what;
  std::string json;
  std::string binary;
  absl::StatusCode code;
  const char* message;
};

TEST(RestJsonTest, RefusesEveryMalformedRequestNamingThePlace) {
  const std::string x = R"("name":"x","shape":[2],"datatype":"FP32")";
  const BadCase cases[] = {
      {"truncated", R"({"inputs":[)", "", absl::StatusCode::kInvalidArgument,
       "invalid JSON at byte 12: syntax error"},
      {"trailing bytes", R"({} {})", "", absl::StatusCode::kInvalidArgument,
       "invalid JSON at byte"},
      {"not JSON", "hello", "", absl::StatusCode::kInvalidArgument, "invalid JSON at byte 1"},
      {"empty body", "", "", absl::StatusCode::kInvalidArgument, "invalid JSON"},
      {"invalid UTF-8", "{\"id\":\"\xff\"}", "", absl::StatusCode::kInvalidArgument,
       "invalid JSON"},
      {"number overflow",
       R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[1e999]}]})", "",
       absl::StatusCode::kInvalidArgument, "invalid JSON at byte"},
      {"not an object", "[1,2]", "", absl::StatusCode::kInvalidArgument,
       "the request: expected an object, got an array"},
      {"id a number", R"({"id":5})", "", absl::StatusCode::kInvalidArgument,
       "id: expected a string, got an integer"},
      {"inputs an object", R"({"inputs":{}})", "", absl::StatusCode::kInvalidArgument,
       "inputs: expected an array, got an object"},
      {"input a string", R"({"inputs":["x"]})", "", absl::StatusCode::kInvalidArgument,
       "inputs[0]: expected an object, got a string"},
      {"name a number", R"({"inputs":[{"name":1}]})", "", absl::StatusCode::kInvalidArgument,
       "inputs[0].name: expected a string, got an integer"},
      {"shape a number", R"({"inputs":[{"shape":2}]})", "", absl::StatusCode::kInvalidArgument,
       "inputs[0].shape: expected an array, got an integer"},
      {"negative dimension", R"({"inputs":[{"shape":[2,-1]}]})", "",
       absl::StatusCode::kInvalidArgument, "inputs[0].shape[1]: -1 is negative"},
      {"fractional dimension", R"({"inputs":[{"shape":[2.5]}]})", "",
       absl::StatusCode::kInvalidArgument,
       "inputs[0].shape[0]: expected a non-negative integer, got a number"},
      {"huge dimension", R"({"inputs":[{"shape":[18446744073709551615]}]})", "",
       absl::StatusCode::kInvalidArgument, "is too large for a dimension"},
      {"nested shape", R"({"inputs":[{"shape":[[2]]}]})", "", absl::StatusCode::kInvalidArgument,
       "inputs[0].shape[0]: expected a non-negative integer, got an array"},
      {"datatype unknown", R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":[1]}]})",
       "", absl::StatusCode::kInvalidArgument,
       "inputs[0].datatype: 'INT32' is not supported; actserve computes FP32, FP64, FP16 and "
       "BF16"},
      {"string value", absl::StrCat("{\"inputs\":[{", x, R"(,"data":[1,"2"]}]})"), "",
       absl::StatusCode::kInvalidArgument,
       "inputs[0].data[1]: a string; tensor data must be numbers"},
      {"boolean value", absl::StrCat("{\"inputs\":[{", x, R"(,"data":[true,1]}]})"), "",
       absl::StatusCode::kInvalidArgument, "inputs[0].data[0]: a boolean"},
      {"null value", absl::StrCat("{\"inputs\":[{", x, R"(,"data":[1,null]}]})"), "",
       absl::StatusCode::kInvalidArgument, "inputs[0].data[1]: null"},
      {"object value", absl::StrCat("{\"inputs\":[{", x, R"(,"data":[{}]}]})"), "",
       absl::StatusCode::kInvalidArgument,
       "inputs[0].data: expected a number or an array, got an object"},
      {"data a number", absl::StrCat("{\"inputs\":[{", x, R"(,"data":1}]})"), "",
       absl::StatusCode::kInvalidArgument, "inputs[0].data: expected an array, got an integer"},
      {"too few values", absl::StrCat("{\"inputs\":[{", x, R"(,"data":[1]}]})"), "",
       absl::StatusCode::kInvalidArgument, "inputs[0].data: 1 values, but shape [2] needs 2"},
      {"too many values", absl::StrCat("{\"inputs\":[{", x, R"(,"data":[1,2,3]}]})"), "",
       absl::StatusCode::kInvalidArgument, "inputs[0].data: more than the 2 values of shape [2]"},
      {"too many values, data first",
       R"({"inputs":[{"data":[1,2,3],"name":"x","shape":[2],"datatype":"FP32"}]})", "",
       absl::StatusCode::kInvalidArgument, "inputs[0].data: 3 values, but shape [2] needs 2"},
      {"shape larger than the body",
       R"({"inputs":[{"name":"x","shape":[1000000000000],"datatype":"FP32","data":[1]}]})", "",
       absl::StatusCode::kInvalidArgument,
       "inputs[0].data: shape [1000000000000] needs 1000000000000 values, more than the "
       "request's "},
      {"shape larger than the body, data first",
       R"({"inputs":[{"data":[1],"name":"x","shape":[1000000000000],"datatype":"FP32"}]})", "",
       absl::StatusCode::kInvalidArgument,
       "inputs[0].data: 1 values, but shape [1000000000000] needs 1000000000000"},
      {"no name", R"({"inputs":[{"shape":[1],"datatype":"FP32","data":[1]}]})", "",
       absl::StatusCode::kInvalidArgument, "inputs[0]: no name"},
      {"no shape", R"({"inputs":[{"name":"x","datatype":"FP32","data":[1]}]})", "",
       absl::StatusCode::kInvalidArgument, "inputs[0] ('x'): no shape"},
      {"no datatype", R"({"inputs":[{"name":"x","shape":[1],"data":[1]}]})", "",
       absl::StatusCode::kInvalidArgument, "inputs[0] ('x'): no datatype"},
      {"no data", absl::StrCat("{\"inputs\":[{", x, "}]}"), "", absl::StatusCode::kInvalidArgument,
       "inputs[0] ('x'): no data"},
      {"data and binary",
       absl::StrCat("{\"inputs\":[{", x, R"(,"data":[1,2],"parameters":{"binary_data_size":8}}]})"),
       std::string(8, '\0'), absl::StatusCode::kInvalidArgument,
       "inputs[0] ('x'): both data and parameters.binary_data_size"},
      {"repeated field", R"({"inputs":[{"name":"x","name":"y"}]})", "",
       absl::StatusCode::kInvalidArgument, "inputs[0]: field \"name\" given twice"},
      {"repeated inputs", R"({"inputs":[],"inputs":[]})", "", absl::StatusCode::kInvalidArgument,
       "the request: field \"inputs\" given twice"},
      {"binary without header",
       absl::StrCat("{\"inputs\":[{", x, R"(,"parameters":{"binary_data_size":8}}]})"), "",
       absl::StatusCode::kInvalidArgument,
       "inputs[0].parameters.binary_data_size: 8 bytes, but only 0 bytes of binary data are "
       "left after the JSON header (no Inference-Header-Content-Length header)"},
      {"binary left over",
       absl::StrCat("{\"inputs\":[{", x, R"(,"parameters":{"binary_data_size":8}}]})"),
       std::string(12, '\0'), absl::StatusCode::kInvalidArgument,
       "binary data: the inputs' binary_data_size parameters add up to 8 bytes, but 12 bytes "
       "follow the JSON header"},
      {"binary size negative",
       absl::StrCat("{\"inputs\":[{", x, R"(,"parameters":{"binary_data_size":-8}}]})"), "",
       absl::StatusCode::kInvalidArgument,
       "inputs[0].parameters.binary_data_size: expected a non-negative integer, got -8"},
      {"binary size a string",
       absl::StrCat("{\"inputs\":[{", x, R"(,"parameters":{"binary_data_size":"8"}}]})"), "",
       absl::StatusCode::kInvalidArgument,
       "inputs[0].parameters.binary_data_size: expected a non-negative integer, got a string"},
      {"unknown input parameter",
       absl::StrCat("{\"inputs\":[{", x, R"(,"parameters":{"shared_memory_region":"r"}}]})"), "",
       absl::StatusCode::kInvalidArgument,
       "inputs[0].parameters: unknown parameter 'shared_memory_region'; an input takes only "
       "binary_data_size"},
      {"unknown output parameter",
       R"({"outputs":[{"name":"y","parameters":{"classification":3}}]})", "",
       absl::StatusCode::kInvalidArgument,
       "outputs[0].parameters: unknown parameter 'classification'; an output takes only "
       "binary_data"},
      {"binary_data not a boolean", R"({"outputs":[{"name":"y","parameters":{"binary_data":1}}]})",
       "", absl::StatusCode::kInvalidArgument,
       "outputs[0].parameters.binary_data: expected a boolean, got an integer"},
      {"output without name", R"({"outputs":[{}]})", "", absl::StatusCode::kInvalidArgument,
       "outputs[0]: no name"},
      {"binary_data_output not a boolean", R"({"parameters":{"binary_data_output":"yes"}})", "",
       absl::StatusCode::kInvalidArgument,
       "parameters.binary_data_output: expected a boolean, got a string"},
      {"parameter an object", R"({"parameters":{"beta":{"value":1}}})", "",
       absl::StatusCode::kInvalidArgument,
       "parameters.beta: expected a string, number or boolean, got an object"},
      {"parameter an array", R"({"parameters":{"beta":[1]}})", "",
       absl::StatusCode::kInvalidArgument,
       "parameters.beta: expected a string, number or boolean, got an array"},
      {"parameter null", R"({"parameters":{"beta":null}})", "", absl::StatusCode::kInvalidArgument,
       "parameters.beta: expected a string, number or boolean, got null"},
      {"too many inputs",
       absl::StrCat(R"({"inputs":[)",
                    [] {
                      std::string many;
                      for (int i = 0; i < 17; ++i) {
                        absl::StrAppend(&many, i ? "," : "",
                                        R"({"name":"x","shape":[0],"datatype":"FP32","data":[]})");
                      }
                      return many;
                    }(),
                    "]}"),
       "", absl::StatusCode::kResourceExhausted,
       "inputs: more than 16 inputs; a model has at most 3"},
      {"too many parameters",
       absl::StrCat(R"({"parameters":{)",
                    [] {
                      std::string many;
                      for (int i = 0; i < 65; ++i)
                        absl::StrAppend(&many, i ? "," : "", "\"p", i, "\":1");
                      return many;
                    }(),
                    "}}"),
       "", absl::StatusCode::kResourceExhausted, "the request: more than 64 parameters"},
      {"long string", absl::StrCat(R"({"id":")", std::string(5000, 'a'), "\"}"), "",
       absl::StatusCode::kResourceExhausted,
       "a JSON string at byte 7 is longer than the 4096 bytes a name, an id or a parameter "
       "may have"},
      {"long escaped string", absl::StrCat(R"({"x":")", std::string(5000, '\\'), "\"}"), "",
       absl::StatusCode::kResourceExhausted, "a JSON string at byte 6 is longer than"},
      {"long unterminated string", absl::StrCat(R"({"x":")", std::string(5000, 'a')), "",
       absl::StatusCode::kResourceExhausted, "a JSON string at byte 6 is longer than"},
  };
  for (const BadCase& bad : cases) {
    SCOPED_TRACE(bad.what);
    const std::unique_ptr<Parsed> parsed = Parse(bad.json, bad.binary);
    EXPECT_EQ(parsed->status.code(), bad.code) << parsed->status;
    EXPECT_THAT(parsed->status.message(), HasSubstr(bad.message));
  }
}

TEST(RestJsonTest, RefusesMoreDimensionsThanMaxRankWhileParsing) {
  std::string dims = "1";
  for (int i = 1; i < 100000; ++i) dims += ",1";
  const std::unique_ptr<Parsed> parsed =
      Parse(absl::StrCat(R"({"inputs":[{"name":"x","shape":[)", dims, "]}]}"));
  EXPECT_EQ(parsed->status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(parsed->status.message(),
              HasSubstr("inputs[0].shape: more than 32 dimensions (--max_rank)"));
}

TEST(RestJsonTest, RefusesDeepNestingAtTheLimitWithoutRecursing) {
  // A million levels: refused at level 40 (the parser keeps one bit per level and our
  // reader one frame, so neither the stack nor the heap grows with the attack).
  const int levels = 1000000;
  const std::string deep =
      absl::StrCat(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":)",
                   std::string(levels, '['), std::string(levels, ']'), "}]}");
  const std::unique_ptr<Parsed> parsed = Parse(deep);
  EXPECT_EQ(parsed->status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(parsed->status.message(), HasSubstr("the JSON nests deeper than 40 levels"));
  const std::unique_ptr<Parsed> skipped = Parse(
      absl::StrCat(R"({"unknown":)", std::string(levels, '['), std::string(levels, ']'), "}"));
  EXPECT_EQ(skipped->status.code(), absl::StatusCode::kResourceExhausted);
  // Nested data within the limit is flattened, row-major.
  const std::unique_ptr<Parsed> nested = Parse(
      R"({"inputs":[{"name":"x","shape":[2,1,2],"datatype":"FP64","data":[[[1,2]],[[3,4]]]}]})");
  ASSERT_TRUE(nested->status.ok()) << nested->status;
  EXPECT_EQ(Values<double>(nested->request.request.inputs[0].data),
            (std::vector<double>{1, 2, 3, 4}));
}

TEST(RestJsonTest, MemoryIsBoundedByTheRequestNotByItsShape) {
  // A shape of 10^12 elements with one value allocates nothing for the shape.
  const std::unique_ptr<Parsed> parsed =
      Parse(R"({"inputs":[{"name":"x","shape":[1000000,1000000],"datatype":"FP64","data":[1]}]})");
  EXPECT_EQ(parsed->status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(parsed->memory.bytes, 64u);

  // Data before its shape: doubles in 64 KiB chunks until the shape is known (at most
  // 4 bytes per byte of JSON, plus one chunk), then the tensor itself.
  std::string values = "0";
  for (int i = 1; i < 200000; ++i) values += ",0";
  const std::string json = absl::StrCat(R"({"inputs":[{"data":[)", values,
                                        R"(],"name":"x","shape":[200000],"datatype":"FP16"}]})");
  const std::unique_ptr<Parsed> first = Parse(json);
  ASSERT_TRUE(first->status.ok()) << first->status;
  EXPECT_EQ(first->memory.bytes, 25 * (size_t{1} << 13) * sizeof(double) + 200000 * 2);
  EXPECT_LE(first->memory.bytes, 4 * json.size() + (size_t{1} << 16) + 200000 * 2);
}

// --- Output ---

double ReadBack(const std::string& text) { return std::strtod(text.c_str(), nullptr); }

TEST(RestJsonTest, Float32AndFloat64TextReadsBackAsTheSameBits) {
  std::mt19937_64 random(20261202);
  const float specials32[] = {0.0f,
                              -0.0f,
                              1.0f,
                              0.1f,
                              std::numeric_limits<float>::max(),
                              std::numeric_limits<float>::min(),
                              std::numeric_limits<float>::denorm_min(),
                              -3.4028235e38f,
                              16777216.0f,
                              1e-45f};
  for (float value : specials32) {
    uint32_t bits;
    std::memcpy(&bits, &value, 4);
    const std::optional<std::string> text = FormatJsonNumber(DType::kFloat32, bits);
    ASSERT_TRUE(text.has_value());
    EXPECT_EQ(static_cast<float>(ReadBack(*text)), value) << *text;
    EXPECT_EQ(std::signbit(static_cast<float>(ReadBack(*text))), std::signbit(value));
  }
  EXPECT_EQ(FormatJsonNumber(DType::kFloat32, 0x3DCCCCCD), "0.1");  // shortest
  int checked = 0;
  while (checked < 300000) {
    const uint32_t bits = static_cast<uint32_t>(random());
    float value;
    std::memcpy(&value, &bits, 4);
    if (!std::isfinite(value)) continue;
    const std::optional<std::string> text = FormatJsonNumber(DType::kFloat32, bits);
    ASSERT_TRUE(text.has_value());
    // Through double, as a JSON reader reads it, then to float.
    const float back = static_cast<float>(ReadBack(*text));
    uint32_t back_bits;
    std::memcpy(&back_bits, &back, 4);
    ASSERT_EQ(back_bits, bits) << *text;
    ++checked;
  }
  checked = 0;
  while (checked < 300000) {
    const uint64_t bits = random();
    double value;
    std::memcpy(&value, &bits, 8);
    if (!std::isfinite(value)) continue;
    const std::optional<std::string> text = FormatJsonNumber(DType::kFloat64, bits);
    ASSERT_TRUE(text.has_value());
    const double back = ReadBack(*text);
    uint64_t back_bits;
    std::memcpy(&back_bits, &back, 8);
    ASSERT_EQ(back_bits, bits) << *text;
    ++checked;
  }
}

TEST(RestJsonTest, EveryFinite16BitValueReadsBackAsTheSameBits) {
  for (DType dtype : {DType::kFloat16, DType::kBFloat16}) {
    for (uint32_t bits = 0; bits < 65536; ++bits) {
      const double value =
          dtype == DType::kFloat16 ? Float16ToDouble(bits) : BFloat16ToDouble(bits);
      const std::optional<std::string> text = FormatJsonNumber(dtype, bits);
      if (!std::isfinite(value)) {
        EXPECT_FALSE(text.has_value());
        continue;
      }
      ASSERT_TRUE(text.has_value());
      const double back = ReadBack(*text);
      const uint16_t back_bits =
          dtype == DType::kFloat16 ? RoundToFloat16(back) : RoundToBFloat16(back);
      ASSERT_EQ(back_bits, bits) << DTypeName(dtype) << " " << *text;
      // Short: at most 5 significant digits plus sign, point and exponent.
      EXPECT_LE(text->size(), 13u) << *text;
    }
  }
  EXPECT_EQ(FormatJsonNumber(DType::kFloat16, RoundToFloat16(0.1)), "0.1");
  EXPECT_EQ(FormatJsonNumber(DType::kBFloat16, RoundToBFloat16(-2.5)), "-2.5");
}

TEST(RestJsonTest, WritesAResponseThatJsonReadersParse) {
  const float y[3] = {0.1f, -2.0f, 1e-45f};
  const uint16_t dx[2] = {RoundToFloat16(0.5), RoundToFloat16(-65504)};
  const double binary[2] = {1.5, -0.25};
  const int64_t shape3[] = {3};
  const int64_t shape2[] = {1, 2};
  const RestOutput outputs[] = {
      {"y", DType::kFloat32, shape3, {reinterpret_cast<const char*>(y), sizeof(y)}, false},
      {"dx", DType::kFloat16, shape2, {reinterpret_cast<const char*>(dx), sizeof(dx)}, false},
      {"dweight",
       DType::kFloat64,
       shape2,
       {reinterpret_cast<const char*>(binary), sizeof(binary)},
       true},
  };
  RestResponseInfo info;
  info.model_name = "gelu";
  info.model_version = "1";
  info.id = "a\"b\n";
  std::string json;
  ASSERT_TRUE(WriteInferResponse(info, outputs, 0, &json).ok());
  const nlohmann::json parsed = nlohmann::json::parse(json);
  EXPECT_EQ(parsed["model_name"], "gelu");
  EXPECT_EQ(parsed["model_version"], "1");
  EXPECT_EQ(parsed["id"], "a\"b\n");
  ASSERT_EQ(parsed["outputs"].size(), 3u);
  EXPECT_EQ(parsed["outputs"][0]["datatype"], "FP32");
  EXPECT_EQ(parsed["outputs"][0]["shape"], nlohmann::json::array({3}));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(static_cast<float>(parsed["outputs"][0]["data"][i].get<double>()), y[i]);
  }
  EXPECT_EQ(parsed["outputs"][1]["datatype"], "FP16");
  // The shortest text that rounds back to the half: -65504 is written -6.55e+04.
  EXPECT_EQ(json.find("-65504"), std::string::npos);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(RoundToFloat16(parsed["outputs"][1]["data"][i].get<double>()), dx[i]);
  }
  EXPECT_EQ(parsed["outputs"][2]["parameters"]["binary_data_size"], 16);
  EXPECT_FALSE(parsed["outputs"][2].contains("data"));

  // No id: none echoed.
  info.id = "";
  ASSERT_TRUE(WriteInferResponse(info, outputs, 0, &json).ok());
  EXPECT_FALSE(nlohmann::json::parse(json).contains("id"));
}

TEST(RestJsonTest, RefusesNonFiniteJsonOutputsAndOversizedResponses) {
  const float y[3] = {1, std::numeric_limits<float>::quiet_NaN(), 2};
  const int64_t shape[] = {3};
  RestOutput output{
      "y", DType::kFloat32, shape, {reinterpret_cast<const char*>(y), sizeof(y)}, false};
  std::string json;
  absl::Status status = WriteInferResponse({"m", "1", ""}, {&output, 1}, 0, &json);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("outputs[0] (y): element 1 is NaN or infinite"));
  output.binary = true;  // binary data carries NaN as it is
  EXPECT_TRUE(WriteInferResponse({"m", "1", ""}, {&output, 1}, 0, &json).ok());

  const float ones[3] = {1, 1, 1};
  output = RestOutput{
      "y", DType::kFloat32, shape, {reinterpret_cast<const char*>(ones), sizeof(ones)}, false};
  EXPECT_TRUE(WriteInferResponse({"m", "1", ""}, {&output, 1}, 200, &json).ok());
  status = WriteInferResponse({"m", "1", ""}, {&output, 1}, 60, &json);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(status.message(), HasSubstr("larger than the 60 bytes allowed"));
}

TEST(RestJsonTest, ErrorBodiesAreCappedValidJson) {
  EXPECT_EQ(ErrorJson("bad \"x\""), R"({"error":"bad \"x\""})");
  const std::string long_message = std::string(1020, 'a') + "\xc3\xa9\xc3\xa9\xc3\xa9";
  const nlohmann::json capped = nlohmann::json::parse(ErrorJson(long_message));
  const std::string text = capped["error"];
  EXPECT_LE(text.size(), kMaxErrorMessageBytes);
  EXPECT_EQ(text.substr(text.size() - 3), "...");
  const nlohmann::json replaced = nlohmann::json::parse(ErrorJson("bad \xff byte"));
  EXPECT_EQ(replaced["error"], "bad \xef\xbf\xbd byte");
}

TEST(RestJsonTest, MetadataObjectsFollowTheSpecification) {
  const absl::string_view extensions[] = {"binary_tensor_data"};
  const nlohmann::json server =
      nlohmann::json::parse(ServerMetadataJson("actserve", "0.1.0", extensions));
  EXPECT_EQ(server,
            nlohmann::json::parse(
                R"({"name":"actserve","version":"0.1.0","extensions":["binary_tensor_data"]})"));
  ModelMetadata metadata;
  metadata.name = "prelu";
  metadata.versions = {"1"};
  metadata.platform = "actserve";
  metadata.inputs = {{"x", "FP32", {-1}}, {"weight", "FP32", {-1}}};
  metadata.outputs = {{"y", "FP32", {-1}}};
  EXPECT_EQ(nlohmann::json::parse(ModelMetadataJson(metadata)),
            nlohmann::json::parse(R"({"name":"prelu","versions":["1"],"platform":"actserve",
              "inputs":[{"name":"x","datatype":"FP32","shape":[-1]},
                        {"name":"weight","datatype":"FP32","shape":[-1]}],
              "outputs":[{"name":"y","datatype":"FP32","shape":[-1]}]})"));
}

}  // namespace
}  // namespace inference
}  // namespace server
}  // namespace actserve
