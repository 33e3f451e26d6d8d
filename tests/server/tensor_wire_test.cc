// proto/tensor_wire.h against the generated protobuf code, which is the oracle: whatever
// protobuf writes, ParseCompute* reads with the same fields and data; whatever Encode*
// writes, protobuf parses back to the same message.
#include "proto/tensor_wire.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "actserve/v1/activation.pb.h"

namespace actserve {
namespace wire {
namespace {

using std::string_literals::operator""s;

grpc::ByteBuffer ToByteBuffer(const std::string& bytes, size_t piece) {
  // Several slices, as gRPC delivers a message: one per HTTP/2 frame.
  std::vector<grpc::Slice> slices;
  for (size_t at = 0; at < bytes.size(); at += piece) {
    slices.emplace_back(bytes.data() + at, std::min(piece, bytes.size() - at));
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

std::string ToString(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string out;
  for (const grpc::Slice& slice : slices) {
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out;
}

std::string Bytes(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7);
  return s;
}

v1::ComputeRequest SampleRequest() {
  v1::ComputeRequest request;
  v1::ComputeItem* a = request.add_items();
  a->mutable_input()->set_dtype(v1::DTYPE_FLOAT32);
  a->mutable_input()->add_shape(3);
  a->mutable_input()->add_shape(1000);
  a->mutable_input()->set_data(Bytes(12000, 1));
  a->mutable_activation()->mutable_leaky_relu()->set_negative_slope(0.2);
  a->set_mode(v1::MODE_FORWARD_BACKWARD);
  a->mutable_grad_output()->set_dtype(v1::DTYPE_FLOAT32);
  a->mutable_grad_output()->add_shape(3);
  a->mutable_grad_output()->add_shape(1000);
  a->mutable_grad_output()->set_data(Bytes(12000, 2));
  v1::ComputeItem* b = request.add_items();
  b->mutable_input()->set_dtype(v1::DTYPE_FLOAT64);
  b->mutable_input()->set_data(Bytes(8, 3));  // a scalar: no shape
  v1::Tensor* weight = b->mutable_activation()->mutable_prelu()->mutable_weight();
  weight->set_dtype(v1::DTYPE_FLOAT64);
  weight->set_data(Bytes(8, 4));
  return request;
}

// Parses `bytes` with ParseComputeRequest, collecting the data fields.
absl::Status Parse(const std::string& bytes, size_t piece, v1::ComputeRequest* header,
                   std::map<std::pair<int, TensorField>, std::string>* data) {
  grpc::ByteBuffer buffer = ToByteBuffer(bytes, piece);
  return ParseComputeRequest(&buffer, header,
                             [&](int index, TensorField field, size_t size) -> absl::StatusOr<char*> {
                               std::string& slot = (*data)[{index, field}];
                               slot.assign(size, '\0');
                               return slot.data();
                             });
}

TEST(TensorWireTest, RequestParsesLikeProtobufWithDataCopiedOut) {
  const v1::ComputeRequest request = SampleRequest();
  for (size_t piece : {size_t{1}, size_t{7}, size_t{16384}, size_t{1} << 20}) {
    v1::ComputeRequest header;
    std::map<std::pair<int, TensorField>, std::string> data;
    ASSERT_TRUE(Parse(request.SerializeAsString(), piece, &header, &data).ok()) << piece;
    ASSERT_EQ(data.size(), 3u);
    EXPECT_EQ((data[{0, TensorField::kInput}]), request.items(0).input().data());
    EXPECT_EQ((data[{0, TensorField::kGradOutput}]), request.items(0).grad_output().data());
    EXPECT_EQ((data[{1, TensorField::kInput}]), request.items(1).input().data());
    // Put the data back: the rest must be exactly protobuf's parse.
    header.mutable_items(0)->mutable_input()->set_data(data[{0, TensorField::kInput}]);
    header.mutable_items(0)->mutable_grad_output()->set_data(
        data[{0, TensorField::kGradOutput}]);
    header.mutable_items(1)->mutable_input()->set_data(data[{1, TensorField::kInput}]);
    EXPECT_EQ(header.SerializeAsString(), request.SerializeAsString());
    EXPECT_FALSE(header.items(1).has_grad_output());
  }
}

TEST(TensorWireTest, EmptyRequestHasNoItems) {
  v1::ComputeRequest header;
  std::map<std::pair<int, TensorField>, std::string> data;
  ASSERT_TRUE(Parse("", 16, &header, &data).ok());
  EXPECT_EQ(header.items_size(), 0);
}

TEST(TensorWireTest, TruncatedRequestIsInvalidArgument) {
  const std::string bytes = SampleRequest().SerializeAsString();
  v1::ComputeRequest header;
  std::map<std::pair<int, TensorField>, std::string> data;
  const absl::Status status = Parse(bytes.substr(0, bytes.size() - 5), 16, &header, &data);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("malformed ComputeRequest"), std::string::npos);
}

TEST(TensorWireTest, DestinationErrorEndsTheParse) {
  grpc::ByteBuffer buffer = ToByteBuffer(SampleRequest().SerializeAsString(), 64);
  v1::ComputeRequest header;
  const absl::Status status = ParseComputeRequest(
      &buffer, &header, [](int, TensorField, size_t) -> absl::StatusOr<char*> {
        return absl::ResourceExhaustedError("no memory for you");
      });
  EXPECT_EQ(status, absl::ResourceExhaustedError("no memory for you"));
}

TEST(TensorWireTest, EncodedResponseIsWhatProtobufReadsAndSizeIsExact) {
  const std::string out = Bytes(5000, 5), grad = Bytes(5000, 6), weight = Bytes(3 * 4, 7);
  const int64_t shape[] = {5, 250};
  const int64_t weight_shape[] = {3};
  std::vector<ResultToEncode> results(2);
  results[0].output = {v1::DTYPE_FLOAT32, shape, grpc::Slice(out)};
  results[0].grad_input = {v1::DTYPE_FLOAT32, shape, grpc::Slice(grad)};
  results[0].grad_weight = {v1::DTYPE_FLOAT32, weight_shape, grpc::Slice(weight)};
  results[1].output = {v1::DTYPE_FLOAT32, {}, grpc::Slice()};  // an empty tensor
  std::vector<ResultSizeInfo> sizes(2);
  sizes[0].output = {{v1::DTYPE_FLOAT32, shape, out.size()}};
  sizes[0].grad_input = {{v1::DTYPE_FLOAT32, shape, grad.size()}};
  sizes[0].grad_weight = {{v1::DTYPE_FLOAT32, weight_shape, weight.size()}};
  sizes[1].output = {{v1::DTYPE_FLOAT32, {}, 0}};

  const std::string bytes = ToString(EncodeComputeResponse(std::move(results)));
  EXPECT_EQ(EncodedResponseSize(sizes), bytes.size());
  v1::ComputeResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  ASSERT_EQ(parsed.results_size(), 2);
  EXPECT_EQ(parsed.results(0).output().data(), out);
  EXPECT_EQ(parsed.results(0).grad_input().data(), grad);
  EXPECT_EQ(parsed.results(0).grad_weight().data(), weight);
  EXPECT_EQ(parsed.results(0).output().shape_size(), 2);
  EXPECT_EQ(parsed.results(0).grad_weight().shape(0), 3);
  EXPECT_TRUE(parsed.results(1).has_output());
  EXPECT_FALSE(parsed.results(1).has_grad_input());
  // And the same bytes, read back by ParseComputeResponse.
  grpc::ByteBuffer again = ToByteBuffer(bytes, 100);
  v1::ComputeResponse header;
  std::map<std::pair<int, TensorField>, std::string> data;
  ASSERT_TRUE(ParseComputeResponse(&again, &header,
                                   [&](int index, TensorField field,
                                       size_t size) -> absl::StatusOr<char*> {
                                     std::string& slot = data[{index, field}];
                                     slot.assign(size, '\0');
                                     return slot.data();
                                   })
                  .ok());
  EXPECT_EQ((data[{0, TensorField::kGradInput}]), grad);
  EXPECT_EQ((data[{0, TensorField::kGradWeight}]), weight);
}

TEST(TensorWireTest, EncodedRequestIsWhatProtobufReads) {
  const v1::ComputeRequest request = SampleRequest();
  std::vector<ItemToEncode> items(2);
  for (int i = 0; i < 2; ++i) {
    const v1::ComputeItem& item = request.items(i);
    items[i].input = {item.input().dtype(), item.input().shape(),
                      UnownedSlice(item.input().data())};
    if (item.has_grad_output()) {
      items[i].grad_output = TensorToEncode{item.grad_output().dtype(), item.grad_output().shape(),
                                            UnownedSlice(item.grad_output().data())};
    }
    items[i].activation = &item.activation();
    items[i].mode = item.mode();
  }
  v1::ComputeRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(ToString(EncodeComputeRequest(std::move(items)))));
  EXPECT_EQ(parsed.SerializeAsString(), request.SerializeAsString());
}

// ---------------------------------------------------------------------------------------
// Encodings at the edges of the wire format, written out byte by byte. For each, the
// oracle is protobuf's own ParseFromArray: the decoder must accept exactly when it does.
// These are the places where the decoder once disagreed (found by
// tests/fuzz/wire_differential_fuzzer.cc), and their neighbours that must keep working.

struct EdgeCase {
  const char* name;
  std::string bytes;
  bool valid;  // what protobuf says, checked too
};

std::string Repeat(const std::string& piece, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += piece;
  return out;
}

// `depth` unknown groups (field 5) nested in one another, a varint field in the middle.
std::string NestedGroups(int depth) {
  return Repeat("\x2b", depth) + std::string("\x08\x07") + Repeat("\x2c", depth);
}

// A length-delimited field (`tag` is one byte) with its true length.
std::string Field(char tag, const std::string& body) {
  std::string out(1, tag);
  for (size_t length = body.size(); ; length >>= 7) {
    out.push_back(static_cast<char>(length < 0x80 ? length : (length & 0x7f) | 0x80));
    if (length < 0x80) break;
  }
  return out + body;
}

std::vector<EdgeCase> EdgeCases() {
  return {
      // items[0].input claims 127 bytes but its item holds 5 more: the length reaches past
      // the item (CodedInputStream::PushLimit caps it at the item's end instead).
      {"input_length_past_its_item", "\x0a\x07\x0a\x7f\x08\x01\x12\x01\x05"s, false},
      // A packed shape claiming 5 bytes in a tensor of 4, the rest taken from the item
      // after it, which is otherwise a valid unknown field.
      {"packed_shape_past_its_tensor", "\x0a\x06\x0a\x04\x12\x05\x01\x02\x18\x81\x01"s, false},
      {"data_past_its_item", "\x0a\x06\x0a\x04\x1a\x06\xaa\xbb\x18\x81\x81\x01"s, false},
      {"item_past_the_end", "\x0a\x05\x0a\x00"s, false},
      // A tag is at most 5 bytes; the fifth byte's bits above 32 are dropped.
      {"tag_of_five_bytes", "\x8a\x80\x80\x80\x00\x00"s, true},
      {"tag_of_five_bytes_above_32_bits", "\x8a\x80\x80\x80\x10\x00"s, true},
      {"tag_of_six_bytes", "\x8a\x80\x80\x80\x80\x00\x00"s, false},
      // A length is at most 5 bytes.
      {"length_of_five_bytes", "\x0a\x80\x80\x80\x80\x00"s, true},
      {"length_of_six_bytes", "\x0a\x80\x80\x80\x80\x80\x00"s, false},
      // A varint is at most 10 bytes.
      {"mode_of_ten_bytes", Field('\x0a', "\x18\x83\x80\x80\x80\x80\x80\x80\x80\x80\x00"s), true},
      {"mode_of_eleven_bytes",
       Field('\x0a', "\x18\x83\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00"s), false},
      {"field_zero", "\x00"s, false},
      {"field_zero_length_delimited", "\x02\x00"s, false},
      {"field_zero_in_a_tensor", Field('\x0a', Field('\x0a', "\x08\x01\x00\x00"s)), false},
      {"end_group_outside_a_group", Field('\x0a', "\x1c"s), false},
      {"group_closed_by_another_field", "\x2b\x34"s, false},
      {"group_never_closed", Field('\x0a', "\x2b"s) + "\x2c"s, false},
      {"wire_type_7", "\x0f"s, false},
      // Each sub-message and group spends one of 100 levels: 100 groups fit at the top,
      // 99 in an item, 98 in a tensor or an activation.
      {"groups_100_deep_at_the_top", NestedGroups(100), true},
      {"groups_101_deep_at_the_top", NestedGroups(101), false},
      {"groups_99_deep_in_an_item", Field('\x0a', NestedGroups(99)), true},
      {"groups_100_deep_in_an_item", Field('\x0a', NestedGroups(100)), false},
      {"groups_98_deep_in_a_tensor", Field('\x0a', Field('\x22', NestedGroups(98))), true},
      {"groups_99_deep_in_a_tensor", Field('\x0a', Field('\x22', NestedGroups(99))), false},
      {"groups_98_deep_in_an_activation", Field('\x0a', Field('\x12', NestedGroups(98))), true},
      {"groups_99_deep_in_an_activation", Field('\x0a', Field('\x12', NestedGroups(99))), false},
  };
}

TEST(TensorWireTest, EdgeEncodingsAreAcceptedExactlyWhenProtobufAcceptsThem) {
  for (const EdgeCase& edge : EdgeCases()) {
    v1::ComputeRequest expected;
    ASSERT_EQ(expected.ParseFromArray(edge.bytes.data(), static_cast<int>(edge.bytes.size())),
              edge.valid)
        << edge.name << ": protobuf's verdict";
    for (size_t piece : {size_t{1}, size_t{3}, size_t{1} << 20}) {
      v1::ComputeRequest header;
      std::map<std::pair<int, TensorField>, std::string> data;
      const absl::Status status = Parse(edge.bytes, piece, &header, &data);
      if (edge.valid) {
        ASSERT_TRUE(status.ok()) << edge.name << ": " << status;
        expected.DiscardUnknownFields();
        header.DiscardUnknownFields();
        EXPECT_EQ(header.SerializeAsString(), expected.SerializeAsString()) << edge.name;
      } else {
        EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << edge.name << ": " << status;
      }
    }
  }
}

// The bits of a 5-byte tag above 32 are dropped, so this is items (1, length-delimited).
TEST(TensorWireTest, TagAbove32BitsIsReadModulo32Bits) {
  v1::ComputeRequest header;
  std::map<std::pair<int, TensorField>, std::string> data;
  ASSERT_TRUE(Parse(std::string("\x8a\x80\x80\x80\x10\x00", 6), 2, &header, &data).ok());
  EXPECT_EQ(header.items_size(), 1);
}

// ---------------------------------------------------------------------------------------
// ParseLimits.

// Parses with `limits`, counting how often the destination was asked for memory.
absl::Status ParseLimited(const std::string& bytes, const ParseLimits& limits,
                          v1::ComputeRequest* header, int* destinations) {
  grpc::ByteBuffer buffer = ToByteBuffer(bytes, 5);
  std::vector<std::string> storage;
  storage.reserve(64);
  return ParseComputeRequest(
      &buffer, header,
      [&](int, TensorField, size_t size) -> absl::StatusOr<char*> {
        ++*destinations;
        return storage.emplace_back(size, '\0').data();
      },
      limits);
}

// An item whose input has `dimensions` (each 1) packed and one float of data.
std::string ItemWithRank(int dimensions, char tensor_tag = '\x0a') {
  const std::string tensor =
      "\x08\x01"s + Field('\x12', std::string(dimensions, '\x01')) + Field('\x1a', "\0\0\x80\x3f"s);
  return Field('\x0a', Field(tensor_tag, tensor) + Field('\x12', Field('\x0a', "")));
}

TEST(TensorWireTest, MaxItemsIsEnforcedAtTheItemOverTheLimit) {
  const std::string three = ItemWithRank(1) + ItemWithRank(1) + ItemWithRank(1);
  v1::ComputeRequest header;
  int destinations = 0;
  ASSERT_TRUE(ParseLimited(three, {.max_items = 3}, &header, &destinations).ok());
  EXPECT_EQ(header.items_size(), 3);

  destinations = 0;
  const absl::Status status = ParseLimited(three, {.max_items = 2}, &header, &destinations);
  EXPECT_EQ(status, absl::ResourceExhaustedError(
                        "the request has more than 2 items (the limit, --max_items); split it "
                        "into smaller requests"));
  EXPECT_EQ(destinations, 2);  // the third item's data was never asked for
}

TEST(TensorWireTest, MaxItemsIsReportedBeforeTheItemIsParsed) {
  // The third item is truncated: the limit is met first, so it is what the caller hears.
  const std::string bytes = ItemWithRank(1) + ItemWithRank(1) + "\x0a\x7f\x0a"s;
  v1::ComputeRequest header;
  int destinations = 0;
  EXPECT_EQ(ParseLimited(bytes, {.max_items = 2}, &header, &destinations).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ParseLimited(bytes, {}, &header, &destinations).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TensorWireTest, MaxRankIsEnforcedPerTensorPackedOrNot) {
  v1::ComputeRequest header;
  int destinations = 0;
  ASSERT_TRUE(ParseLimited(ItemWithRank(4), {.max_rank = 4}, &header, &destinations).ok());
  EXPECT_EQ(header.items(0).input().shape_size(), 4);

  EXPECT_EQ(ParseLimited(ItemWithRank(1) + ItemWithRank(5), {.max_rank = 4}, &header,
                         &destinations),
            absl::ResourceExhaustedError(
                "items[1].input.shape: more than 4 dimensions (the limit, --max_rank)"));
  // Unpacked, in grad_output.
  const std::string unpacked = Field(
      '\x0a', Field('\x22', "\x10\x02\x10\x03\x10\x04"s) + Field('\x12', Field('\x0a', "")));
  EXPECT_EQ(ParseLimited(unpacked, {.max_rank = 2}, &header, &destinations),
            absl::ResourceExhaustedError(
                "items[0].grad_output.shape: more than 2 dimensions (the limit, --max_rank)"));
  EXPECT_TRUE(ParseLimited(unpacked, {.max_rank = 3}, &header, &destinations).ok());
}

TEST(TensorWireTest, MaxRankCountsTheMergedShape) {
  // Two input fields of 2 dimensions each: protobuf merges them into one of 4.
  const std::string twice = Field('\x0a', Field('\x0a', Field('\x12', "\x02\x03"s)) +
                                              Field('\x0a', Field('\x12', "\x04\x05"s)));
  v1::ComputeRequest expected;
  ASSERT_TRUE(expected.ParseFromString(twice));
  ASSERT_EQ(expected.items(0).input().shape_size(), 4);
  v1::ComputeRequest header;
  int destinations = 0;
  EXPECT_EQ(ParseLimited(twice, {.max_rank = 3}, &header, &destinations).code(),
            absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(ParseLimited(twice, {.max_rank = 4}, &header, &destinations).ok());
  EXPECT_EQ(header.SerializeAsString(), expected.SerializeAsString());
}


// An item whose activation is PReLU with `weights` as the encoding of its weight fields
// (each a Tensor), in one `activation` field per entry of `activations`.
std::string PreluItem(const std::vector<std::string>& activations) {
  std::string item = Field('\x0a', Field('\x12', "\x01"s) + Field('\x1a', "\0\0\x80\x3f"s));
  for (const std::string& activation : activations) item += Field('\x12', activation);
  return Field('\x0a', item);
}

std::string PreluWeight(const std::string& weight_tensor) {
  return Field('\x22', Field('\x0a', weight_tensor));
}

TEST(TensorWireTest, MaxRankBoundsThePreluWeightBeforeProtobufParsesIt) {
  const std::string packed_five = Field('\x12', "\x01\xac\x02\x03\x80\x80\x01\x05"s);
  const std::string unpacked_three = "\x10\x02\x10\xac\x02\x10\x04"s;
  const std::string packed_two = Field('\x12', "\x02\x03"s);
  struct Case {
    const char* name;
    std::string bytes;
  };
  const Case cases[] = {
      {"packed", PreluItem({PreluWeight(packed_five)})},
      {"unpacked", PreluItem({PreluWeight(unpacked_three)})},
      // Repeated fields concatenate when protobuf merges: two weights in one prelu, two
      // prelus in one activation, two activations in one item.
      {"two_weights", PreluItem({Field('\x22', Field('\x0a', packed_two) +
                                                   Field('\x0a', unpacked_three))})},
      {"two_prelus", PreluItem({PreluWeight(packed_two) + PreluWeight(packed_five)})},
      {"two_activations", PreluItem({PreluWeight(unpacked_three), PreluWeight(packed_two)})},
      // Fields off the path are skipped, whatever they hold.
      {"other_fields", PreluItem({Field('\x0a', "") + "\x98\x01\x07"s +
                                  Field('\x22', "\x08\x05"s + Field('\x0a', packed_two) +
                                                     Field('\x12', packed_five))})},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::ComputeRequest expected;  // the oracle: protobuf's own parse
    ASSERT_TRUE(expected.ParseFromString(c.bytes));
    const int rank = expected.items(0).activation().prelu().weight().shape_size();
    ASSERT_GE(rank, 2);
    v1::ComputeRequest header;
    int destinations = 0;
    ASSERT_TRUE(ParseLimited(c.bytes, {.max_rank = rank}, &header, &destinations).ok());
    EXPECT_EQ(header.items(0).activation().SerializeAsString(),
              expected.items(0).activation().SerializeAsString());
    EXPECT_EQ(ParseLimited(c.bytes, {.max_rank = rank - 1}, &header, &destinations),
              absl::ResourceExhaustedError(absl::StrCat(
                  "items[0].activation.prelu.weight.shape: more than ", rank - 1,
                  " dimensions (the limit, --max_rank)")));
  }
}


TEST(TensorWireTest, RepeatedActivationBytesParseAsProtobufParsesThem) {
  // The decoder copies the last activation it parsed when the next item's bytes are the
  // same; merges into an item's activation must not leak into that copy.
  const std::string slope_02 = Field('\x1a', "\x09\x9a\x99\x99\x99\x99\x99\xc9\x3f"s);
  const std::string slope_03 = Field('\x1a', "\x09\x33\x33\x33\x33\x33\x33\xd3\x3f"s);
  const std::string prelu = Field('\x22', Field('\x0a', "\x08\x01"s + Field('\x12', "\x02"s) +
                                                        Field('\x1a', "\0\0\x80\x3f\0\0\0\x40"s)));
  const std::string input = Field('\x0a', Field('\x12', "\x01"s));
  auto item = [&](std::vector<std::string> activations) {
    std::string bytes = input;
    for (const std::string& a : activations) bytes += Field('\x12', a);
    return Field('\x0a', bytes);
  };
  const std::string bytes =
      item({slope_02}) + item({slope_02}) + item({slope_02, slope_03}) + item({slope_02}) +
      item({slope_03}) + item({prelu}) + item({prelu, prelu}) + item({prelu}) + item({""}) +
      item({""}) + item({slope_02 + "\xf8\x01\x05"s}) + item({slope_02 + "\xf8\x01\x05"s}) +
      item({slope_03, slope_02}) + item({slope_03});
  v1::ComputeRequest expected;  // the oracle: protobuf's own parse
  ASSERT_TRUE(expected.ParseFromString(bytes));
  v1::ComputeRequest header;
  int destinations = 0;
  ASSERT_TRUE(ParseLimited(bytes, {.max_rank = 4}, &header, &destinations).ok());
  ASSERT_EQ(header.items_size(), expected.items_size());
  for (int i = 0; i < expected.items_size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(header.items(i).activation().SerializeAsString(),
              expected.items(i).activation().SerializeAsString());
  }
  // The checks above are not vacuous: the merged items differ from their neighbours.
  EXPECT_NE(expected.items(2).activation().SerializeAsString(),
            expected.items(3).activation().SerializeAsString());
  EXPECT_EQ(expected.items(6).activation().prelu().weight().shape_size(), 2);
  EXPECT_NE(expected.items(12).activation().SerializeAsString(),
            expected.items(13).activation().SerializeAsString());
}

}  // namespace
}  // namespace wire
}  // namespace actserve
