// Writes the seed corpus of wire_differential_fuzzer into the directory named on the
// command line, one file per seed. The seeds are the encodings at the edges of protobuf's
// wire format, where a hand-written decoder is most likely to part ways with protobuf:
// they are built here from small helpers, so that each one reads as what it is, rather
// than committed as opaque binary files. Many are invalid on purpose; the fuzzer only
// asks that the decoder and protobuf agree on each.
//
//   wire_differential_seeds build/fuzz/tests/fuzz/seeds/wire
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace {

constexpr int kVarint = 0, kFixed64 = 1, kLen = 2, kStartGroup = 3, kEndGroup = 4,
              kFixed32 = 5;

// A varint padded to `bytes` bytes (at least its canonical length): a non-canonical
// encoding of the same value.
std::string Varint(uint64_t value, int bytes = 0) {
  std::string out;
  do {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  } while (value != 0 || static_cast<int>(out.size()) < bytes);
  out.back() = static_cast<char>(out.back() & 0x7f);
  return out;
}

std::string Tag(int field, int wire_type) {
  return Varint((static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wire_type));
}

std::string Bytes(std::initializer_list<int> bytes) {
  std::string out;
  for (int byte : bytes) out.push_back(static_cast<char>(byte));
  return out;
}

// A length-delimited field with its true length.
std::string Len(int field, const std::string& body) {
  return Tag(field, kLen) + Varint(body.size()) + body;
}

// A length-delimited field that claims `claimed` bytes, whatever follows.
std::string LenClaiming(int field, uint64_t claimed, const std::string& body) {
  return Tag(field, kLen) + Varint(claimed) + body;
}

std::string VarintField(int field, uint64_t value) { return Tag(field, kVarint) + Varint(value); }

// `depth` unknown groups nested in one another (field 5), with a varint in the innermost.
std::string NestedGroups(int depth) {
  std::string open, close;
  for (int i = 0; i < depth; ++i) {
    open += Tag(5, kStartGroup);
    close += Tag(5, kEndGroup);
  }
  return open + VarintField(1, 7) + close;
}

// ComputeRequest { items = 1 }, ComputeItem { input = 1, activation = 2, mode = 3,
// grad_output = 4 }, Tensor { dtype = 1, shape = 2, data = 3 }, Activation { relu = 1,
// leaky_relu = 3 (negative_slope = 1, a double), gelu = 8 (approximate = 1), ... }.
std::string Item(const std::string& body) { return Len(1, body); }
std::string Input(const std::string& body) { return Len(1, body); }
std::string GradOutput(const std::string& body) { return Len(4, body); }
std::string Activation(const std::string& body) { return Len(2, body); }
std::string Mode(uint64_t mode) { return VarintField(3, mode); }
std::string Dtype(uint64_t dtype) { return VarintField(1, dtype); }
std::string PackedShape(const std::vector<uint64_t>& shape) {
  std::string body;
  for (uint64_t dimension : shape) body += Varint(dimension);
  return Len(2, body);
}
std::string Dimension(uint64_t dimension) { return VarintField(2, dimension); }
std::string Data(const std::string& data) { return Len(3, data); }
const std::string kRelu = Activation(Len(1, ""));
const std::string kFloat = Bytes({0x00, 0x00, 0x80, 0x3f});  // 1.0f

std::string Double(double value) {
  std::string out(8, '\0');
  std::memcpy(out.data(), &value, 8);
  return out;
}

std::vector<std::pair<std::string, std::string>> Seeds() {
  const std::string input = Input(Dtype(1) + PackedShape({2}) + Data(kFloat + kFloat));
  return {
      {"empty", ""},
      {"canonical", Item(input + kRelu + Mode(3) +
                         GradOutput(Dtype(1) + PackedShape({2}) + Data(kFloat + kFloat)))},
      {"two_items", Item(input + kRelu) + Item(input + Activation(Len(16, "")))},
      {"unpacked_shape", Item(Input(Dtype(1) + Dimension(2) + Dimension(1) + Data(kFloat + kFloat)) + kRelu)},
      {"mixed_packed_unpacked_shape",
       Item(Input(Dimension(1) + PackedShape({2, 1}) + PackedShape({}) + Dimension(1) +
                  Data(kFloat + kFloat)) +
            kRelu)},
      {"huge_dimensions", Item(Input(PackedShape({~0ull, 1ull << 63, 1ull << 31})) + kRelu)},
      {"input_twice_merged",
       Item(Input(Dtype(2) + Dimension(2) + Data(kFloat)) + kRelu +
            Input(Dtype(1) + Dimension(1) + Data(kFloat + kFloat)))},
      {"input_twice_data_kept", Item(input + Input(Dtype(1)) + kRelu)},
      {"data_twice_last_wins", Item(Input(Data(kFloat + kFloat + kFloat) + Dtype(1) + Data(kFloat)) + kRelu)},
      {"empty_data_field_last", Item(Input(Data(kFloat) + Data("")) + kRelu)},
      {"scalars_twice_last_wins", Item(input + Mode(1) + Mode(2) + Input(Dtype(3) + Dtype(4)) + kRelu)},
      {"empty_tensors_present", Item(Input("") + GradOutput("") + Activation(""))},
      {"unknown_fields_everywhere",
       VarintField(9, 1) + Item(Tag(7, kFixed64) + Double(1.5) +
                                Input(Tag(6, kFixed32) + Bytes({1, 2, 3, 4}) + Len(15, "xyz") +
                                      Dtype(1) + NestedGroups(2)) +
                                Activation(Len(1, VarintField(5, 3)) + VarintField(99, 1)) +
                                NestedGroups(1)) +
           Len(2, "unknown")},
      {"known_fields_with_wrong_wire_type",
       Item(Tag(3, kLen) + Varint(1) + Bytes({1}) + Input(Tag(1, kLen) + Varint(0) + Tag(3, kVarint) + Varint(5)) + Tag(2, kVarint) + Varint(1))},
      {"oneof_two_kinds_in_one_activation",
       Item(input + Activation(Len(1, "") + Len(8, VarintField(1, 1))))},
      {"oneof_two_activation_fields_merged",
       Item(input + Activation(Len(8, VarintField(1, 1))) + Activation(Len(8, "")))},
      {"oneof_two_activation_fields_override",
       Item(input + Activation(Len(3, Tag(1, kFixed64) + Double(0.2))) + Activation(Len(5, "")))},
      {"prelu_weight_shapes_merged",
       Item(input + Activation(Len(4, Len(1, Dtype(1) + PackedShape({2, 3})) +
                                          Len(1, Dimension(4)))) +
            Activation(Len(4, Len(1, PackedShape({1, 1, 1})))))},
      {"prelu_weight_dropped_by_another_kind",
       Item(input + Activation(Len(4, Len(1, PackedShape({1, 2, 3, 4, 5}))) + Len(8, "") +
                               Len(4, Len(1, PackedShape({6})))))},
      {"same_activation_bytes_in_every_item",
       Item(input + kRelu) + Item(input + kRelu) + Item(input + kRelu + kRelu) + Item(input + kRelu)},
      // An item with a 5-byte tag and a 5-byte length holding an input with a 2-byte tag
      // and a 2-byte length; then an unknown varint field, 3-byte tag, 10-byte value.
      {"noncanonical_tags_and_lengths",
       Varint(10, 5) + Varint(4, 5) + Varint(10, 2) + Varint(0, 2) + Varint(8 | 1 << 6, 3) +
           Varint(1, 10)},
      {"tag_above_32_bits", Varint(10 + (1ull << 32), 5) + Varint(0)},
      {"tag_six_bytes", Varint(10, 6) + Varint(0)},
      {"length_six_bytes", Tag(1, kLen) + Varint(0, 6)},
      {"length_five_bytes_huge", Tag(1, kLen) + Varint(0x7ffffff0, 5)},
      {"varint_ten_bytes", Item(input + kRelu + Tag(3, kVarint) + Varint(~0ull, 10))},
      {"varint_ten_bytes_padded", Item(input + kRelu + Tag(3, kVarint) + Varint(2, 10))},
      {"varint_eleven_bytes", Item(input + kRelu + Tag(3, kVarint) + Varint(2, 11))},
      {"enum_above_32_bits", Item(Input(Dtype((1ull << 32) + 1)) + Mode((1ull << 40) | 3) + kRelu)},
      {"truncated_item", LenClaiming(1, 10, input)},
      {"truncated_varint", Item(input) + Tag(1, kLen) + Bytes({0x80})},
      {"nested_length_127_claimed_5_present",
       Item(LenClaiming(1, 127, Dtype(1) + PackedShape({5})))},
      {"nested_length_past_parent_not_input_end",
       Item(LenClaiming(1, 6, Dtype(1) + PackedShape({5}))) + VarintField(9, 0)},
      {"data_past_parent", Item(Input(LenClaiming(3, 8, kFloat))) + kFloat},
      {"packed_shape_past_tensor", Item(Input(LenClaiming(2, 3, Varint(1))) + Varint(2) + Varint(3))},
      {"packed_varint_across_packed_end", Item(Input(Len(2, Bytes({0x80})) + Bytes({0x01})))},
      {"unknown_length_past_parent", Item(LenClaiming(9, 4, "ab")) + Bytes({0, 0})},
      {"fixed64_past_parent", Item(Tag(9, kFixed64) + Bytes({1, 2, 3})) + Bytes({4, 5, 6, 7, 8})},
      {"field_zero_top", Bytes({0x00})},
      {"field_zero_length_delimited", Len(0, "") },
      {"field_zero_in_tensor", Item(Input(Dtype(1) + Tag(0, kVarint) + Varint(0)))},
      {"field_zero_in_group", Tag(5, kStartGroup) + Tag(0, kFixed32) + "abcd" + Tag(5, kEndGroup)},
      {"end_group_top", Tag(1, kEndGroup)},
      {"end_group_field_zero", Bytes({0x04})},
      {"end_group_in_item", Item(input + Tag(2, kEndGroup))},
      {"group_mismatched_end", Tag(5, kStartGroup) + Tag(6, kEndGroup)},
      {"group_unterminated", Item(Tag(5, kStartGroup) + VarintField(1, 1)) + Tag(5, kEndGroup)},
      {"wire_types_6_and_7", Bytes({0x0e}) + Bytes({0x0f})},
      {"groups_100_top", NestedGroups(100)},
      {"groups_101_top", NestedGroups(101)},
      {"groups_99_in_item", Item(NestedGroups(99))},
      {"groups_100_in_item", Item(NestedGroups(100))},
      {"groups_98_in_tensor", Item(Input(NestedGroups(98)))},
      {"groups_99_in_tensor", Item(Input(NestedGroups(99)))},
      {"groups_98_in_activation", Item(Activation(NestedGroups(98)))},
      {"groups_99_in_activation", Item(Activation(NestedGroups(99)))},
  };
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
    return 2;
  }
  for (const auto& [name, bytes] : Seeds()) {
    std::ofstream file(std::string(argv[1]) + "/" + name, std::ios::binary | std::ios::trunc);
    file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!file) {
      std::fprintf(stderr, "cannot write %s/%s\n", argv[1], name.c_str());
      return 1;
    }
  }
  return 0;
}
