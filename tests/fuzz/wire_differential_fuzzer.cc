// libFuzzer target: wire::ParseComputeRequest against protobuf's own parser, which is
// the oracle. The same bytes go to v1::ComputeRequest::ParseFromArray and, split into
// slices the way HTTP/2 frames split a message, to the hand-written decoder. It aborts
// when the two disagree on whether the bytes are a valid ComputeRequest, or on any value
// parsed from them: the header (dtype, shape, mode, activation, which tensors are
// present) and every tensor's data bytes.
//
// The data destination hands out buffers filled with a non-zero canary, so data the
// decoder promised but never wrote shows up as a difference, and records which item and
// tensor each buffer went to; the last buffer for a tensor is its data (protobuf's rule:
// the last `data` field wins).
//
// A second parse with limits taken from the input checks ParseLimits: within them the
// result is the same; over them, and only then, it is ResourceExhausted.
//
//   wire_differential_fuzzer -runs=10000000 corpus_dir build/fuzz/tests/fuzz/seeds/wire
#include <google/protobuf/unknown_field_set.h>
#include <google/protobuf/util/field_comparator.h>
#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "actserve/v1/activation.pb.h"
#include "proto/tensor_wire.h"

namespace {

using actserve::v1::ComputeRequest;
using actserve::v1::Tensor;
using actserve::wire::TensorField;

constexpr char kCanary = static_cast<char>(0xA5);

[[noreturn]] void Disagree(const std::string& what) {
  std::fprintf(stderr, "wire::ParseComputeRequest disagrees with protobuf: %s\n",
               what.c_str());
  std::abort();
}

// FNV-1a: the slice boundaries and limits are a function of the input, so a finding
// replays exactly, yet every input gets different boundaries.
uint64_t Hash(const uint8_t* data, size_t size) {
  uint64_t hash = 14695981039346656037ull;
  for (size_t i = 0; i < size; ++i) hash = (hash ^ data[i]) * 1099511628211ull;
  return hash;
}

// splitmix64, seeded by the hash.
uint64_t Next(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// The bytes as several slices. Pieces of 1 byte put every varint, tag and length across
// a boundary; longer ones test the fast paths; empty slices are legal in a ByteBuffer.
grpc::ByteBuffer SplitIntoSlices(const uint8_t* data, size_t size, uint64_t seed) {
  static constexpr size_t kLongestPiece[] = {1, 2, 3, 7, 16, 64, 1 << 20};
  const size_t longest = kLongestPiece[Next(&seed) % std::size(kLongestPiece)];
  std::vector<grpc::Slice> slices;
  for (size_t at = 0; at < size;) {
    const size_t piece = std::min<size_t>(size - at, Next(&seed) % (longest + 1));
    slices.emplace_back(data + at, piece);
    at += piece;
  }
  if (slices.empty()) slices.emplace_back();
  return grpc::ByteBuffer(slices.data(), slices.size());
}

// One parse by the decoder, with the data it wrote.
struct WireParse {
  absl::Status status;
  ComputeRequest header;
  std::deque<std::string> buffers;                           // every buffer handed out
  std::map<std::pair<int, TensorField>, std::string*> data;  // the last one per tensor
};

void ParseWithDecoder(const uint8_t* bytes, size_t size, uint64_t seed,
                      const actserve::wire::ParseLimits& limits, WireParse* parse) {
  grpc::ByteBuffer buffer = SplitIntoSlices(bytes, size, seed);
  parse->status = actserve::wire::ParseComputeRequest(
      &buffer, &parse->header,
      [parse](int index, TensorField field, size_t bytes) -> absl::StatusOr<char*> {
        // Data belongs to the item being parsed, which is the last one so far.
        if (index != parse->header.items_size() - 1) {
          Disagree("data for item " + std::to_string(index) + " while parsing item " +
                   std::to_string(parse->header.items_size() - 1));
        }
        if (field != TensorField::kInput && field != TensorField::kGradOutput) {
          Disagree("a response field in a request");
        }
        std::string& out = parse->buffers.emplace_back(bytes, kCanary);
        parse->data[{index, field}] = &out;
        return out.data();
      },
      limits);
}

// Takes the data out of protobuf's tensor and checks it against what the decoder wrote.
void CompareData(int index, TensorField field, Tensor* expected, Tensor* actual,
                 WireParse* parse) {
  const auto found = parse->data.find({index, field});
  const std::string empty;
  const std::string& written = found == parse->data.end() ? empty : *found->second;
  if (written != expected->data()) {
    Disagree("items[" + std::to_string(index) + "]." +
             (field == TensorField::kInput ? "input" : "grad_output") + ".data: " +
             std::to_string(written.size()) + " bytes, protobuf has " +
             std::to_string(expected->data().size()));
  }
  if (!actual->data().empty()) Disagree("the header has tensor data in it");
  expected->clear_data();
}

// `parse` accepted what protobuf parsed as `expected` (unknown fields discarded): the
// same header and the same data.
void CompareAccepted(const ComputeRequest& expected_with_data, WireParse* parse) {
  ComputeRequest expected = expected_with_data;
  ComputeRequest& actual = parse->header;
  actual.DiscardUnknownFields();  // the activation keeps them; protobuf's were dropped
  if (actual.items_size() != expected.items_size()) {
    Disagree(std::to_string(actual.items_size()) + " items, protobuf has " +
             std::to_string(expected.items_size()));
  }
  for (const auto& [key, buffer] : parse->data) {
    if (key.first >= expected.items_size()) Disagree("data for an item that is not there");
  }
  for (int i = 0; i < expected.items_size(); ++i) {
    auto* expected_item = expected.mutable_items(i);
    auto* actual_item = actual.mutable_items(i);
    if (expected_item->has_input() && actual_item->has_input()) {
      CompareData(i, TensorField::kInput, expected_item->mutable_input(),
                  actual_item->mutable_input(), parse);
    }
    if (expected_item->has_grad_output() && actual_item->has_grad_output()) {
      CompareData(i, TensorField::kGradOutput, expected_item->mutable_grad_output(),
                  actual_item->mutable_grad_output(), parse);
    }
  }
  std::string differences;
  google::protobuf::util::MessageDifferencer differencer;
  // An activation parameter may be any double; NaN is the same value parsed twice. The
  // serialized compare below still tells NaN payloads apart.
  google::protobuf::util::DefaultFieldComparator comparator;
  comparator.set_treat_nan_as_equal(true);
  differencer.set_field_comparator(&comparator);
  differencer.ReportDifferencesToString(&differences);
  if (!differencer.Compare(expected, actual)) Disagree("header differs:\n" + differences);
  // MessageDifferencer sees presence through reflection; the bytes are a second opinion
  // (an empty sub-message present on one side only is one extra field on the wire).
  if (expected.SerializeAsString() != actual.SerializeAsString()) {
    Disagree("header serializes differently");
  }
}

int MaxRank(const ComputeRequest& request) {
  int rank = 0;
  for (const auto& item : request.items()) {
    rank = std::max({rank, item.input().shape_size(), item.grad_output().shape_size()});
  }
  return rank;
}

// The most entries any item's PReLU weight holds while protobuf merges the request,
// which is what --max_rank bounds for it: found with protobuf's own parsers, field by
// field in wire order (an UnknownFieldSet keeps it). Entries concatenate across `prelu`
// fields; a field of another activation (the oneof switching kinds) drops them.
int PeakPreluWeightRank(const uint8_t* data, size_t size) {
  using google::protobuf::UnknownField;
  using google::protobuf::UnknownFieldSet;
  auto fields = [](const std::string& bytes, int number, auto body) {
    UnknownFieldSet set;
    if (!set.ParseFromString(bytes)) return;
    for (int i = 0; i < set.field_count(); ++i) {
      const UnknownField& field = set.field(i);
      if (field.type() != UnknownField::TYPE_LENGTH_DELIMITED) continue;
      if (number == 0 || field.number() == number) body(field);
    }
  };
  int peak = 0;
  const std::string request(reinterpret_cast<const char*>(data), size);
  fields(request, actserve::v1::ComputeRequest::kItemsFieldNumber, [&](const UnknownField& item) {
    int rank = 0;
    fields(item.length_delimited(), actserve::v1::ComputeItem::kActivationFieldNumber,
           [&](const UnknownField& activation) {
             fields(activation.length_delimited(), 0, [&](const UnknownField& kind) {
               if (kind.number() == actserve::v1::Activation::kPreluFieldNumber) {
                 actserve::v1::Prelu prelu;
                 if (prelu.ParseFromString(kind.length_delimited())) {
                   rank += prelu.weight().shape_size();
                   peak = std::max(peak, rank);
                 }
               } else if (actserve::v1::Activation::descriptor()->FindFieldByNumber(
                              kind.number()) != nullptr) {
                 rank = 0;
               }
             });
           });
  });
  return peak;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1u << 20)) return 0;  // within ParseFromArray's int size; larger adds only time
  ComputeRequest expected;
  const bool protobuf_accepts = expected.ParseFromArray(data, static_cast<int>(size));
  expected.DiscardUnknownFields();

  uint64_t seed = Hash(data, size);
  WireParse unlimited;
  ParseWithDecoder(data, size, Next(&seed), {}, &unlimited);
  if (protobuf_accepts != unlimited.status.ok()) {
    Disagree(protobuf_accepts ? "rejects what protobuf accepts: " + unlimited.status.ToString()
                              : "accepts what protobuf rejects");
  }
  if (!protobuf_accepts && unlimited.status.code() != absl::StatusCode::kInvalidArgument) {
    Disagree("a malformed request is not InvalidArgument: " + unlimited.status.ToString());
  }
  if (protobuf_accepts) CompareAccepted(expected, &unlimited);

  // Small limits, so that the seeds' few items and dimensions cross them often.
  actserve::wire::ParseLimits limits;
  limits.max_items = 1 + static_cast<int64_t>(Next(&seed) % 4);
  limits.max_rank = 1 + static_cast<int>(Next(&seed) % 6);
  WireParse limited;
  ParseWithDecoder(data, size, Next(&seed), limits, &limited);
  const absl::StatusCode code = limited.status.code();
  if (!protobuf_accepts) {
    // Over a limit is reported as soon as it is met, before a later malformation.
    if (code != absl::StatusCode::kInvalidArgument &&
        code != absl::StatusCode::kResourceExhausted) {
      Disagree("a malformed request with limits: " + limited.status.ToString());
    }
    return 0;
  }
  const int rank = std::max(MaxRank(expected), PeakPreluWeightRank(data, size));
  const bool over = expected.items_size() > limits.max_items || rank > limits.max_rank;
  if (over != (code == absl::StatusCode::kResourceExhausted)) {
    Disagree("limits of " + std::to_string(limits.max_items) + " items, rank " +
             std::to_string(limits.max_rank) + " for " + std::to_string(expected.items_size()) +
             " items, rank " + std::to_string(rank) + ": " +
             limited.status.ToString());
  }
  if (!over) {
    if (!limited.status.ok()) Disagree("within limits: " + limited.status.ToString());
    CompareAccepted(expected, &limited);
  }
  return 0;
}
