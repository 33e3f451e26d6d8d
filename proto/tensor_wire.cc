// See tensor_wire.h.
#include "proto/tensor_wire.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace actserve {
namespace wire {
namespace {

using google::protobuf::internal::WireFormatLite;

constexpr uint32_t kVarint = WireFormatLite::WIRETYPE_VARINT;
constexpr uint32_t kFixed64 = WireFormatLite::WIRETYPE_FIXED64;
constexpr uint32_t kLengthDelimited = WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
constexpr uint32_t kStartGroup = WireFormatLite::WIRETYPE_START_GROUP;
constexpr uint32_t kEndGroup = WireFormatLite::WIRETYPE_END_GROUP;
constexpr uint32_t kFixed32 = WireFormatLite::WIRETYPE_FIXED32;

constexpr uint32_t Tag(int field, uint32_t wire_type) {
  return (static_cast<uint32_t>(field) << 3) | wire_type;
}

// The field numbers this codec reads and writes, from the generated code, so that a
// renumbered field in activation.proto changes the codec with it.
constexpr int kTensorDType = v1::Tensor::kDtypeFieldNumber;
constexpr int kTensorShape = v1::Tensor::kShapeFieldNumber;
constexpr int kTensorData = v1::Tensor::kDataFieldNumber;
constexpr int kRequestItems = v1::ComputeRequest::kItemsFieldNumber;
constexpr int kItemInput = v1::ComputeItem::kInputFieldNumber;
constexpr int kItemActivation = v1::ComputeItem::kActivationFieldNumber;
constexpr int kItemMode = v1::ComputeItem::kModeFieldNumber;
constexpr int kItemGradOutput = v1::ComputeItem::kGradOutputFieldNumber;
constexpr int kResponseResults = v1::ComputeResponse::kResultsFieldNumber;
constexpr int kResultOutput = v1::ComputeResult::kOutputFieldNumber;
constexpr int kResultGradInput = v1::ComputeResult::kGradInputFieldNumber;
constexpr int kResultGradWeight = v1::ComputeResult::kGradWeightFieldNumber;
// The encoder's sizes (FieldSize, TensorSize, the mode) count one byte per tag, which
// holds for field numbers 1..15.
constexpr bool HasOneByteTag(int field) { return field >= 1 && field <= 15; }
static_assert(HasOneByteTag(kTensorDType) && HasOneByteTag(kTensorShape) &&
                  HasOneByteTag(kTensorData) && HasOneByteTag(kRequestItems) &&
                  HasOneByteTag(kItemInput) && HasOneByteTag(kItemActivation) &&
                  HasOneByteTag(kItemMode) && HasOneByteTag(kItemGradOutput) &&
                  HasOneByteTag(kResponseResults) && HasOneByteTag(kResultOutput) &&
                  HasOneByteTag(kResultGradInput) && HasOneByteTag(kResultGradWeight),
              "the encoder's size arithmetic assumes 1-byte tags");

// ---------------------------------------------------------------------------------------
// Parsing.
//
// The rules are those of protobuf's own parser (google/protobuf/parse_context.h, used by
// ParseFromArray and by gRPC's generated code), not those of CodedInputStream, which
// differ at the edges; matching them is what makes "accepts what protobuf accepts" true:
//
//  - a tag is a varint of at most 5 bytes (its value taken modulo 2^32); field number 0,
//    wire types 6 and 7, and an end-group tag other than the one closing an open group
//    are errors;
//  - any other varint has at most 10 bytes (its value taken modulo 2^64; an enum keeps
//    the low 32 bits);
//  - a length is a varint of at most 5 bytes whose value is at most INT_MAX - 16;
//  - every field ends inside the message that holds it: a length, varint or fixed value
//    reaching past the end of its message is an error, at any level (protobuf checks
//    this against the innermost limit; CodedInputStream::PushLimit would silently cap a
//    nested length at its parent's instead);
//  - each sub-message and each group spends one level of a depth budget that starts at
//    protobuf's default recursion limit (100); a field that needs a level when none is
//    left is an error.
//
// Positions are byte offsets from the start of the message, and each message's end is an
// absolute offset, so a nested length is checked against its parent exactly.

// Reads a message's bytes from the slices gRPC received, without joining them. The
// parser checks every length against the end of its message before reading, so reads
// never pass the end of the input.
class SliceReader {
 public:
  explicit SliceReader(std::vector<grpc::Slice> slices) : slices_(std::move(slices)) {
    for (const grpc::Slice& slice : slices_) size_ += static_cast<int64_t>(slice.size());
    EnterSlice(0);
  }

  int64_t position() const { return slice_start_ + (next_ - begin_); }
  int64_t size() const { return size_; }

  // Most of a request's bytes are headers read one at a time, so this is kept to a
  // compare and an increment while the current slice lasts.
  uint8_t ReadByte() {
    const uint8_t byte = *next_++;
    if (next_ == end_) EnterSlice(slice_ + 1);
    return byte;
  }

  // Whether the next bytes are `expected` (the caller knows that many are left).
  bool Matches(absl::string_view expected) const {
    const uint8_t* next = next_;
    const uint8_t* end = end_;
    size_t slice = slice_;
    for (char c : expected) {
      if (next == end) {
        do {
          ++slice;
        } while (slices_[slice].size() == 0);
        next = slices_[slice].begin();
        end = slices_[slice].end();
      }
      if (*next++ != static_cast<uint8_t>(c)) return false;
    }
    return true;
  }

  // Copies the next `count` bytes to `out` (nullptr: skips them).
  void Read(char* out, int64_t count) {
    while (count > 0) {
      const size_t piece = std::min(static_cast<size_t>(count), static_cast<size_t>(end_ - next_));
      if (out != nullptr) {
        std::memcpy(out, next_, piece);
        out += piece;
      }
      next_ += piece;
      count -= static_cast<int64_t>(piece);
      if (next_ == end_) EnterSlice(slice_ + 1);
    }
  }

 private:
  // Makes the first non-empty slice from `index` on the current one (past the last: an
  // empty range, which the parser never reads since it checks every length first).
  void EnterSlice(size_t index) {
    if (slice_ < slices_.size() && index > slice_) {
      slice_start_ += static_cast<int64_t>(slices_[slice_].size());
    }
    slice_ = index;
    while (slice_ < slices_.size() && slices_[slice_].size() == 0) ++slice_;
    if (slice_ < slices_.size()) {
      begin_ = next_ = slices_[slice_].begin();
      end_ = slices_[slice_].end();
    } else {
      begin_ = next_ = end_ = nullptr;
    }
  }

  std::vector<grpc::Slice> slices_;
  int64_t size_ = 0;
  size_t slice_ = 0;          // the slice holding the next byte
  int64_t slice_start_ = 0;   // the position of its first byte
  const uint8_t* begin_ = nullptr;
  const uint8_t* next_ = nullptr;
  const uint8_t* end_ = nullptr;
};

// A message being parsed: where it ends, and how many levels of nesting are left.
struct Scope {
  int64_t end = 0;
  int depth = 0;
};

absl::string_view TensorFieldName(TensorField field) {
  switch (field) {
    case TensorField::kInput:
      return "input";
    case TensorField::kGradOutput:
      return "grad_output";
    case TensorField::kOutput:
      return "output";
    case TensorField::kGradInput:
      return "grad_input";
    case TensorField::kGradWeight:
      return "grad_weight";
  }
  return "tensor";
}

// How many entries of a repeated varint field at `path` (field numbers from the message
// being read) the bytes hold: every sub-message on the path counts, as protobuf's merge
// concatenates them, and a packed run counts its varints. Linear in the bytes and
// allocates nothing. Counting stops at the first malformed field: protobuf's merge of
// the same bytes fails there.
int64_t CountEntries(google::protobuf::io::CodedInputStream* in, absl::Span<const int> path) {
  int64_t count = 0;
  for (;;) {
    const uint32_t tag = in->ReadTag();
    if (tag == 0) return count;
    const int number = static_cast<int>(WireFormatLite::GetTagFieldNumber(tag));
    const uint32_t wire_type = WireFormatLite::GetTagWireType(tag);
    const bool on_path =
        number == path.front() &&
        (wire_type == kLengthDelimited || (path.size() == 1 && wire_type == kVarint));
    if (!on_path) {
      if (!WireFormatLite::SkipField(in, tag)) return count;
      continue;
    }
    if (wire_type == kVarint) {  // an unpacked entry
      uint64_t ignored = 0;
      if (!in->ReadVarint64(&ignored)) return count;
      ++count;
      continue;
    }
    uint32_t length = 0;
    if (!in->ReadVarint32(&length)) return count;
    const auto limit = in->PushLimit(static_cast<int>(length));
    if (path.size() == 1) {  // a packed run: one entry per final byte
      const void* data = nullptr;
      int size = 0;
      while (in->GetDirectBufferPointer(&data, &size)) {
        const auto* bytes = static_cast<const uint8_t*>(data);
        count += std::count_if(bytes, bytes + size, [](uint8_t b) { return b < 0x80; });
        in->Skip(size);
      }
    } else {
      count += CountEntries(in, path.subspan(1));
    }
    in->PopLimit(limit);
  }
}

// The most entries the PReLU weight's shape holds at any moment while protobuf merges
// `bytes` (an Activation's encoding) into `activation`, found without merging: entries
// concatenate across `prelu` and `weight` fields, and a field of another activation (the
// oneof switching kinds) drops those before it. The peak, not the final rank, is what
// protobuf allocates on the way.
int64_t PeakPreluWeightRank(const v1::Activation& activation, absl::string_view bytes) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  static constexpr int kWeightShape[] = {v1::Prelu::kWeightFieldNumber,
                                         v1::Tensor::kShapeFieldNumber};
  int64_t rank = activation.prelu().weight().shape_size();  // 0 unless prelu is set
  int64_t peak = rank;
  for (;;) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) return peak;
    const int number = static_cast<int>(WireFormatLite::GetTagFieldNumber(tag));
    if (WireFormatLite::GetTagWireType(tag) == kLengthDelimited) {
      if (number == v1::Activation::kPreluFieldNumber) {
        uint32_t length = 0;
        if (!in.ReadVarint32(&length)) return peak;
        const auto limit = in.PushLimit(static_cast<int>(length));
        rank += CountEntries(&in, kWeightShape);
        peak = std::max(peak, rank);
        in.PopLimit(limit);
        continue;
      }
      if (v1::Activation::descriptor()->FindFieldByNumber(number) != nullptr) rank = 0;
    }
    if (!WireFormatLite::SkipField(&in, tag)) return peak;
  }
}

// The parse of one message: the input, where errors go, and what is being parsed.
class Parser {
 public:
  Parser(SliceReader* reader, DataDestination destination, const ParseLimits& limits,
         absl::string_view message, absl::string_view list)
      : in_(*reader), destination_(destination), limits_(limits), message_(message),
        list_(list) {}

  absl::Status status() const { return status_; }
  const ParseLimits& limits() const { return limits_; }

  // The whole input as the top-level message.
  Scope TopLevel() const {
    return Scope{in_.size(), google::protobuf::io::CodedInputStream::GetDefaultRecursionLimit()};
  }

  // Runs `body(tag)` for each field of the message `scope`, which reads the field's
  // value; `body` returns false to stop. False on a malformed input.
  template <typename Body>
  bool ForEachField(const Scope& scope, Body body) {
    while (in_.position() < scope.end) {
      uint32_t tag = 0;
      if (!ReadTag(scope.end, &tag)) return false;
      if (!body(tag)) return false;
    }
    return true;
  }

  // Reads a sub-message's length and runs `parse_body(scope)` on its content.
  template <typename Body>
  bool SubMessage(const Scope& parent, Body parse_body) {
    int64_t length = 0;
    if (!ReadLength(parent.end, &length)) return false;
    if (parent.depth <= 0) return Fail("messages nested too deeply");
    return parse_body(Scope{in_.position() + length, parent.depth - 1});
  }

  // Merges a length-delimited Activation into `activation` with protobuf's own parser,
  // at the depth protobuf would parse it at (its unknown fields are kept). The PReLU
  // weight's shape entries are counted against --max_rank before protobuf sees them: a
  // packed entry of one byte becomes eight, so 256 MiB of shape would cost 2 GiB.
  //
  // Items of a batch mostly share one activation: bytes equal to the last ones merged
  // into an empty Activation give the same message again, which is copied instead.
  bool MergeActivation(const Scope& parent, int index, v1::Activation* activation) {
    int64_t length = 0;
    if (!ReadLength(parent.end, &length)) return false;
    if (parent.depth <= 0) return Fail("messages nested too deeply");
    std::string& bytes = activation_bytes_;
    const bool starts_empty = activation->ByteSizeLong() == 0;
    if (starts_empty && last_activation_ != nullptr &&
        static_cast<int64_t>(last_activation_bytes_.size()) == length &&
        in_.Matches(last_activation_bytes_)) {
      in_.Read(nullptr, length);
      activation->CopyFrom(*last_activation_);
      return true;
    }
    bytes.resize(static_cast<size_t>(length));
    in_.Read(bytes.data(), length);
    if (limits_.max_rank > 0) {
      if (PeakPreluWeightRank(*activation, bytes) > limits_.max_rank) {
        return Exhausted(absl::StrCat(list_, "[", index,
                                      "].activation.prelu.weight.shape: more than ",
                                      limits_.max_rank, " dimensions (the limit, --max_rank)"));
      }
    }
    google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                              static_cast<int>(bytes.size()));
    in.SetRecursionLimit(parent.depth - 1);
    // ConsumedEntireMessage: the merge stops without an error at a 0 or end-group tag,
    // which protobuf's ParseFromArray rejects.
    if (!activation->MergePartialFromCodedStream(&in) || !in.ConsumedEntireMessage()) {
      return Fail("bad actserve.v1.Activation message");
    }
    if (starts_empty) {
      last_activation_bytes_.swap(bytes);
      last_activation_ = activation;
    } else if (activation == last_activation_) {
      last_activation_ = nullptr;  // merged again: no longer what its bytes give
    }
    return true;
  }

  bool ReadEnum(int64_t end, int* value) {
    uint64_t wide = 0;
    if (!ReadVarint(end, &wide)) return false;
    *value = static_cast<int32_t>(static_cast<uint32_t>(wide));
    return true;
  }

  // Skips the value of a field this parser does not know.
  bool Skip(uint32_t tag, const Scope& scope) {
    const uint32_t number = tag >> 3;
    if (number == 0) return Fail("field number 0");
    switch (tag & 7) {
      case kVarint: {
        uint64_t ignored = 0;
        return ReadVarint(scope.end, &ignored);
      }
      case kFixed64:
        return SkipBytes(scope.end, 8);
      case kFixed32:
        return SkipBytes(scope.end, 4);
      case kLengthDelimited: {
        int64_t length = 0;
        if (!ReadLength(scope.end, &length)) return false;
        in_.Read(nullptr, length);
        return true;
      }
      case kStartGroup: {
        if (scope.depth <= 0) return Fail("groups nested too deeply");
        const Scope group{scope.end, scope.depth - 1};
        for (;;) {
          if (in_.position() >= scope.end) return Fail("group without its end-group tag");
          uint32_t inner = 0;
          if (!ReadTag(scope.end, &inner)) return false;
          if (inner == Tag(static_cast<int>(number), kEndGroup)) return true;
          if (!Skip(inner, group)) return false;
        }
      }
      case kEndGroup:
        return Fail("end-group tag outside its group");
      default:
        return Fail("bad wire type");
    }
  }

  bool Tensor(const Scope& parent, int index, TensorField field, v1::Tensor* tensor) {
    return SubMessage(parent, [&](const Scope& scope) {
      return ForEachField(scope, [&](uint32_t tag) {
        switch (tag) {
          case Tag(kTensorDType, kVarint): {
            int dtype = 0;
            if (!ReadEnum(scope.end, &dtype)) return false;
            tensor->set_dtype(static_cast<v1::DType>(dtype));
            return true;
          }
          case Tag(kTensorShape, kVarint):
            return ShapeEntry(scope.end, index, field, tensor);
          case Tag(kTensorShape, kLengthDelimited): {
            int64_t length = 0;
            if (!ReadLength(scope.end, &length)) return false;
            const int64_t packed_end = in_.position() + length;
            while (in_.position() < packed_end) {
              if (!ShapeEntry(packed_end, index, field, tensor)) return false;
            }
            return true;
          }
          case Tag(kTensorData, kLengthDelimited): {
            int64_t size = 0;
            // Checked before the destination is asked for memory: the data is all there.
            if (!ReadLength(scope.end, &size)) return false;
            absl::StatusOr<char*> where =
                destination_(index, field, static_cast<size_t>(size));
            if (!where.ok()) {
              status_ = where.status();
              return false;
            }
            in_.Read(*where, size);
            return true;
          }
          default:
            return Skip(tag, scope);
        }
      });
    });
  }

  bool Fail(absl::string_view what) {
    if (status_.ok()) {
      status_ = absl::InvalidArgumentError(
          absl::StrCat("malformed ", message_, ": ", what, " at byte ", in_.position()));
    }
    return false;
  }

  bool Exhausted(std::string message) {
    if (status_.ok()) status_ = absl::ResourceExhaustedError(std::move(message));
    return false;
  }

 private:
  // A varint of at most 10 bytes, ending before `end`; its value modulo 2^64.
  bool ReadVarint(int64_t end, uint64_t* value) {
    return ReadVarintBytes(end, /*max_bytes=*/10, value, "varint");
  }

  // A tag: a varint of at most 5 bytes, its value modulo 2^32. Field number 0 and a
  // stray end-group tag are left to Skip, since no known field has them.
  bool ReadTag(int64_t end, uint32_t* tag) {
    uint64_t value = 0;
    if (!ReadVarintBytes(end, /*max_bytes=*/5, &value, "tag")) return false;
    *tag = static_cast<uint32_t>(value);
    return true;
  }

  // A length: a varint of at most 5 bytes, at most INT_MAX - 16 (protobuf's bound, which
  // keeps its own pointer arithmetic from overflowing), whose bytes end before `end`.
  bool ReadLength(int64_t end, int64_t* length) {
    uint64_t value = 0;
    if (!ReadVarintBytes(end, /*max_bytes=*/5, &value, "length")) return false;
    if (value > static_cast<uint64_t>(std::numeric_limits<int>::max() - 16)) {
      return Fail("length over 2 GiB");
    }
    if (static_cast<int64_t>(value) > end - in_.position()) {
      return Fail("length past the end of its message");
    }
    *length = static_cast<int64_t>(value);
    return true;
  }

  bool SkipBytes(int64_t end, int64_t count) {
    if (count > end - in_.position()) return Fail("fixed-size value past the end of its message");
    in_.Read(nullptr, count);
    return true;
  }

  bool ReadVarintBytes(int64_t end, int max_bytes, uint64_t* value, absl::string_view what) {
    uint64_t result = 0;
    for (int i = 0; i < max_bytes; ++i) {
      if (in_.position() >= end) return Fail(absl::StrCat(what, " past the end of its message"));
      const uint8_t byte = in_.ReadByte();
      if (7 * i < 64) result |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
      if (byte < 0x80) {
        *value = result;
        return true;
      }
    }
    return Fail(absl::StrCat(what, " longer than ", max_bytes, " bytes"));
  }

  bool ShapeEntry(int64_t end, int index, TensorField field, v1::Tensor* tensor) {
    if (limits_.max_rank > 0 && tensor->shape_size() >= limits_.max_rank) {
      return Exhausted(absl::StrCat(list_, "[", index, "].", TensorFieldName(field),
                                    ".shape: more than ", limits_.max_rank,
                                    " dimensions (the limit, --max_rank)"));
    }
    uint64_t dimension = 0;
    if (!ReadVarint(end, &dimension)) return false;
    tensor->add_shape(static_cast<int64_t>(dimension));
    return true;
  }

  SliceReader& in_;
  DataDestination destination_;
  // The last Activation merged from empty and the bytes it was merged from (see
  // MergeActivation); `activation_bytes_` is the reused buffer for the next one.
  const v1::Activation* last_activation_ = nullptr;
  std::string last_activation_bytes_;
  std::string activation_bytes_;
  const ParseLimits& limits_;
  absl::string_view message_;  // "ComputeRequest", for errors
  absl::string_view list_;     // "items", for errors
  absl::Status status_;
};

// Runs `parse(parser, top_level_scope)` over `bytes`, which may be empty (an empty
// message).
template <typename Parse>
absl::Status ParseByteBuffer(grpc::ByteBuffer* bytes, DataDestination destination,
                             const ParseLimits& limits, absl::string_view message,
                             absl::string_view list, Parse parse) {
  if (bytes->Length() == 0) return absl::OkStatus();
  std::vector<grpc::Slice> slices;
  const grpc::Status dumped = bytes->Dump(&slices);
  if (!dumped.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed ", message, ": ", dumped.error_message()));
  }
  bytes->Clear();
  SliceReader reader(std::move(slices));
  Parser parser(&reader, destination, limits, message, list);
  if (!parse(parser, parser.TopLevel())) return parser.status();
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// Encoding.

size_t VarintSize(uint64_t value) {
  return static_cast<size_t>(google::protobuf::io::CodedOutputStream::VarintSize64(value));
}

// One length-delimited field: its tag, its length, and `length` bytes.
size_t FieldSize(size_t length) { return 1 + VarintSize(length) + length; }

size_t PackedShapeSize(absl::Span<const int64_t> shape) {
  size_t size = 0;
  for (int64_t dimension : shape) size += VarintSize(static_cast<uint64_t>(dimension));
  return size;
}

// Header bytes before the data, and the tensor's whole size, as EncodeTensor writes it.
size_t TensorSize(absl::Span<const int64_t> shape, v1::DType dtype, size_t data_size) {
  size_t size = 0;
  if (dtype != v1::DTYPE_UNSPECIFIED) size += 1 + VarintSize(static_cast<uint64_t>(dtype));
  if (!shape.empty()) size += FieldSize(PackedShapeSize(shape));
  if (data_size > 0) size += FieldSize(data_size);
  return size;
}

// Collects a message as slices: header bytes are gathered into one pending string, and
// each large data slice goes in as it is.
class SliceWriter {
 public:
  // `expected_inline_bytes`: how many bytes will be gathered (headers and small data),
  // reserved at once so that the pending string never regrows and recopies them.
  explicit SliceWriter(size_t expected_inline_bytes) { pending_.reserve(expected_inline_bytes); }

  void Bytes(absl::string_view bytes) { pending_.append(bytes.data(), bytes.size()); }
  void Varint(uint64_t value) {
    while (value >= 0x80) {
      pending_.push_back(static_cast<char>(value | 0x80));
      value >>= 7;
    }
    pending_.push_back(static_cast<char>(value));
  }
  void FieldHeader(int field, size_t length) {
    Varint(Tag(field, kLengthDelimited));
    Varint(length);
  }
  void Data(grpc::Slice data) {
    if (data.size() <= kInlineDataBytes) {
      Bytes(absl::string_view(reinterpret_cast<const char*>(data.begin()), data.size()));
      return;
    }
    Flush();
    slices_.push_back(std::move(data));
  }
  void Tensor(int field, TensorToEncode tensor) {
    FieldHeader(field, TensorSize(tensor.shape, tensor.dtype, tensor.data.size()));
    if (tensor.dtype != v1::DTYPE_UNSPECIFIED) {
      Varint(Tag(kTensorDType, kVarint));
      Varint(static_cast<uint64_t>(tensor.dtype));
    }
    if (!tensor.shape.empty()) {
      FieldHeader(kTensorShape, PackedShapeSize(tensor.shape));
      for (int64_t dimension : tensor.shape) Varint(static_cast<uint64_t>(dimension));
    }
    if (tensor.data.size() > 0) {
      FieldHeader(kTensorData, tensor.data.size());
      Data(std::move(tensor.data));
    }
  }
  grpc::ByteBuffer Finish() {
    Flush();
    return grpc::ByteBuffer(slices_.data(), slices_.size());
  }

 private:
  // The gathered bytes become a slice: copied when few (a small slice is cheaper than an
  // owner), else handed over with the string that holds them, so that a message of many
  // small tensors is not copied once more.
  void Flush() {
    if (pending_.empty()) return;
    if (pending_.size() < kInlineDataBytes) {
      slices_.emplace_back(pending_);
      pending_.clear();
      return;
    }
    auto* owner = new std::string(std::move(pending_));
    slices_.emplace_back(owner->data(), owner->size(),
                         [](void* string) { delete static_cast<std::string*>(string); }, owner);
    pending_ = std::string();
  }

  std::string pending_;
  std::vector<grpc::Slice> slices_;
};

size_t OptionalTensorFieldSize(const std::optional<ResultSizeInfo::TensorInfo>& tensor) {
  if (!tensor.has_value()) return 0;
  return FieldSize(TensorSize(tensor->shape, tensor->dtype, tensor->data_size));
}

size_t OptionalTensorFieldSize(const std::optional<TensorToEncode>& tensor) {
  if (!tensor.has_value()) return 0;
  return FieldSize(TensorSize(tensor->shape, tensor->dtype, tensor->data.size()));
}

}  // namespace

absl::Status ParseComputeRequest(grpc::ByteBuffer* bytes, v1::ComputeRequest* header,
                                 DataDestination destination, const ParseLimits& limits) {
  header->Clear();
  return ParseByteBuffer(
      bytes, destination, limits, "ComputeRequest", "items",
      [&](Parser& parser, const Scope& request) {
        return parser.ForEachField(request, [&](uint32_t tag) {
          if (tag != Tag(kRequestItems, kLengthDelimited)) return parser.Skip(tag, request);
          const int index = header->items_size();
          if (parser.limits().max_items > 0 && index >= parser.limits().max_items) {
            return parser.Exhausted(absl::StrCat(
                "the request has more than ", parser.limits().max_items,
                " items (the limit, --max_items); split it into smaller requests"));
          }
          v1::ComputeItem* item = header->add_items();
          return parser.SubMessage(request, [&](const Scope& scope) {
            return parser.ForEachField(scope, [&](uint32_t item_tag) {
              switch (item_tag) {
                case Tag(kItemInput, kLengthDelimited):
                  return parser.Tensor(scope, index, TensorField::kInput,
                                       item->mutable_input());
                case Tag(kItemGradOutput, kLengthDelimited):
                  return parser.Tensor(scope, index, TensorField::kGradOutput,
                                       item->mutable_grad_output());
                case Tag(kItemActivation, kLengthDelimited):
                  return parser.MergeActivation(scope, index, item->mutable_activation());
                case Tag(kItemMode, kVarint): {
                  int mode = 0;
                  if (!parser.ReadEnum(scope.end, &mode)) return false;
                  item->set_mode(static_cast<v1::Mode>(mode));
                  return true;
                }
                default:
                  return parser.Skip(item_tag, scope);
              }
            });
          });
        });
      });
}

absl::Status ParseComputeResponse(grpc::ByteBuffer* bytes, v1::ComputeResponse* header,
                                  DataDestination destination) {
  header->Clear();
  return ParseByteBuffer(
      bytes, destination, ParseLimits{}, "ComputeResponse", "results",
      [&](Parser& parser, const Scope& response) {
        return parser.ForEachField(response, [&](uint32_t tag) {
          if (tag != Tag(kResponseResults, kLengthDelimited)) return parser.Skip(tag, response);
          const int index = header->results_size();
          v1::ComputeResult* result = header->add_results();
          return parser.SubMessage(response, [&](const Scope& scope) {
            return parser.ForEachField(scope, [&](uint32_t result_tag) {
              switch (result_tag) {
                case Tag(kResultOutput, kLengthDelimited):
                  return parser.Tensor(scope, index, TensorField::kOutput,
                                       result->mutable_output());
                case Tag(kResultGradInput, kLengthDelimited):
                  return parser.Tensor(scope, index, TensorField::kGradInput,
                                       result->mutable_grad_input());
                case Tag(kResultGradWeight, kLengthDelimited):
                  return parser.Tensor(scope, index, TensorField::kGradWeight,
                                       result->mutable_grad_weight());
                default:
                  return parser.Skip(result_tag, scope);
              }
            });
          });
        });
      });
}

size_t EncodedTensorSize(absl::Span<const int64_t> shape, v1::DType dtype, size_t data_size) {
  return TensorSize(shape, dtype, data_size);
}

size_t EncodedResponseSize(absl::Span<const ResultSizeInfo> results) {
  size_t size = 0;
  for (const ResultSizeInfo& result : results) {
    size += FieldSize(OptionalTensorFieldSize(result.output) +
                      OptionalTensorFieldSize(result.grad_input) +
                      OptionalTensorFieldSize(result.grad_weight));
  }
  return size;
}

grpc::ByteBuffer EncodeComputeResponse(std::vector<ResultToEncode> results) {
  // Everything but the data that goes in as slices of its own.
  size_t inline_bytes = 0;
  auto add_tensor = [&inline_bytes](const std::optional<TensorToEncode>& tensor) {
    if (!tensor.has_value()) return size_t{0};
    const size_t size = OptionalTensorFieldSize(tensor);
    const size_t data = tensor->data.size();
    inline_bytes += data > kInlineDataBytes ? size - data : size;
    return size;
  };
  for (const ResultToEncode& result : results) {
    const size_t result_size =
        add_tensor(result.output) + add_tensor(result.grad_input) + add_tensor(result.grad_weight);
    inline_bytes += FieldSize(result_size) - result_size;
  }
  SliceWriter writer(inline_bytes);
  for (ResultToEncode& result : results) {
    writer.FieldHeader(kResponseResults, OptionalTensorFieldSize(result.output) +
                              OptionalTensorFieldSize(result.grad_input) +
                              OptionalTensorFieldSize(result.grad_weight));
    if (result.output.has_value()) writer.Tensor(kResultOutput, std::move(*result.output));
    if (result.grad_input.has_value()) {
      writer.Tensor(kResultGradInput, std::move(*result.grad_input));
    }
    if (result.grad_weight.has_value()) {
      writer.Tensor(kResultGradWeight, std::move(*result.grad_weight));
    }
  }
  return writer.Finish();
}

grpc::ByteBuffer EncodeComputeRequest(std::vector<ItemToEncode> items) {
  SliceWriter writer(/*expected_inline_bytes=*/256);  // headers; small data grows it
  for (ItemToEncode& item : items) {
    const std::string activation = item.activation->SerializeAsString();
    const size_t mode_size =
        item.mode == v1::MODE_UNSPECIFIED ? 0 : 1 + VarintSize(static_cast<uint64_t>(item.mode));
    const std::optional<TensorToEncode>& grad_output = item.grad_output;
    writer.FieldHeader(kRequestItems, FieldSize(TensorSize(item.input.shape, item.input.dtype,
                                               item.input.data.size())) +
                              FieldSize(activation.size()) + mode_size +
                              OptionalTensorFieldSize(grad_output));
    writer.Tensor(kItemInput, std::move(item.input));
    writer.FieldHeader(kItemActivation, activation.size());
    writer.Bytes(activation);
    if (item.mode != v1::MODE_UNSPECIFIED) {
      writer.Varint(Tag(kItemMode, kVarint));
      writer.Varint(static_cast<uint64_t>(item.mode));
    }
    if (item.grad_output.has_value()) writer.Tensor(kItemGradOutput, std::move(*item.grad_output));
  }
  return writer.Finish();
}

grpc::Slice UnownedSlice(absl::Span<const char> data) {
  return grpc::Slice(data.data(), data.size(), grpc::Slice::STATIC_SLICE);
}

}  // namespace wire
}  // namespace actserve
