// See tensor_wire.h.
#include "proto/tensor_wire.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace actserve {
namespace wire {
namespace {

using google::protobuf::io::CodedInputStream;
using google::protobuf::internal::WireFormatLite;

constexpr uint32_t kVarint = WireFormatLite::WIRETYPE_VARINT;
constexpr uint32_t kLengthDelimited = WireFormatLite::WIRETYPE_LENGTH_DELIMITED;

constexpr uint32_t Tag(int field, uint32_t wire_type) {
  return (static_cast<uint32_t>(field) << 3) | wire_type;
}

// The parse of one message: the input, where errors go, and what is being parsed.
class Parser {
 public:
  Parser(CodedInputStream* in, DataDestination destination, absl::string_view message)
      : in_(*in), destination_(destination), message_(message) {}

  absl::Status status() const { return status_; }

  // Runs `body(tag)` for each field of the message that ends at the current limit (or at
  // the end of the input); `body` returns false to stop. False on a malformed input.
  template <typename Body>
  bool ForEachField(Body body) {
    for (;;) {
      const uint32_t tag = in_.ReadTag();
      if (tag == 0) return in_.ConsumedEntireMessage() || Fail("bad field tag");
      if (!body(tag)) return false;
    }
  }

  // Parses a length-delimited sub-message with `parse_body`, inside its length limit.
  template <typename Body>
  bool SubMessage(Body parse_body) {
    uint32_t length = 0;
    if (!in_.ReadVarint32(&length)) return Fail("truncated length");
    const CodedInputStream::Limit limit = in_.PushLimit(static_cast<int>(length));
    if (!parse_body()) return false;
    if (in_.BytesUntilLimit() != 0) return Fail("sub-message shorter than its length");
    in_.PopLimit(limit);
    return true;
  }

  bool Skip(uint32_t tag) {
    return WireFormatLite::SkipField(&in_, tag) || Fail("cannot skip an unknown field");
  }

  bool Tensor(int index, TensorField field, v1::Tensor* tensor) {
    return SubMessage([&] {
      return ForEachField([&](uint32_t tag) {
        switch (tag) {
          case Tag(1, kVarint): {
            uint64_t dtype = 0;
            if (!in_.ReadVarint64(&dtype)) return Fail("truncated dtype");
            tensor->set_dtype(static_cast<v1::DType>(static_cast<int32_t>(dtype)));
            return true;
          }
          case Tag(2, kVarint): {
            uint64_t dimension = 0;
            if (!in_.ReadVarint64(&dimension)) return Fail("truncated shape");
            tensor->add_shape(static_cast<int64_t>(dimension));
            return true;
          }
          case Tag(2, kLengthDelimited):
            return SubMessage([&] {
              while (in_.BytesUntilLimit() > 0) {
                uint64_t dimension = 0;
                if (!in_.ReadVarint64(&dimension)) return Fail("truncated packed shape");
                tensor->add_shape(static_cast<int64_t>(dimension));
              }
              return true;
            });
          case Tag(3, kLengthDelimited): {
            uint32_t size = 0;
            if (!in_.ReadVarint32(&size)) return Fail("truncated data length");
            // Checked before the destination is asked for memory: a tensor is always
            // inside its item's length limit.
            if (in_.BytesUntilLimit() < 0 || size > static_cast<uint32_t>(in_.BytesUntilLimit())) {
              return Fail("data longer than the message");
            }
            absl::StatusOr<char*> where = destination_(index, field, size);
            if (!where.ok()) {
              status_ = where.status();
              return false;
            }
            return size == 0 || in_.ReadRaw(*where, static_cast<int>(size)) ||
                   Fail("truncated data");
          }
          default:
            return Skip(tag);
        }
      });
    });
  }

  bool Fail(absl::string_view what) {
    if (status_.ok()) {
      status_ = absl::InvalidArgumentError(absl::StrCat("malformed ", message_, ": ", what));
    }
    return false;
  }

  CodedInputStream& in() { return in_; }

 private:
  CodedInputStream& in_;
  DataDestination destination_;
  absl::string_view message_;
  absl::Status status_;
};

// Runs `parse(parser)` over `bytes`, which may be empty (an empty message).
template <typename Parse>
absl::Status ParseByteBuffer(grpc::ByteBuffer* bytes, DataDestination destination,
                             absl::string_view message, Parse parse) {
  if (bytes->Length() == 0) return absl::OkStatus();
  grpc::ProtoBufferReader reader(bytes);
  if (!reader.status().ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed ", message, ": ", reader.status().error_message()));
  }
  CodedInputStream in(&reader);
  Parser parser(&in, destination, message);
  if (!parse(parser)) return parser.status();
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
  // `expected_inline_bytes`: about how many bytes will be gathered into one slice, so
  // that the pending string grows once rather than by doubling.
  explicit SliceWriter(size_t expected_inline_bytes) {
    pending_.reserve(std::min(expected_inline_bytes, kMaxReserve));
  }

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
      Varint(Tag(1, kVarint));
      Varint(static_cast<uint64_t>(tensor.dtype));
    }
    if (!tensor.shape.empty()) {
      FieldHeader(2, PackedShapeSize(tensor.shape));
      for (int64_t dimension : tensor.shape) Varint(static_cast<uint64_t>(dimension));
    }
    if (tensor.data.size() > 0) {
      FieldHeader(3, tensor.data.size());
      Data(std::move(tensor.data));
    }
  }
  grpc::ByteBuffer Finish() {
    Flush();
    return grpc::ByteBuffer(slices_.data(), slices_.size());
  }

 private:
  void Flush() {
    if (pending_.empty()) return;
    slices_.emplace_back(pending_);
    pending_.clear();
  }

  // Headers of large tensors are small; only a message of small tensors gets this big.
  static constexpr size_t kMaxReserve = 64 * 1024;

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
                                 DataDestination destination) {
  header->Clear();
  return ParseByteBuffer(bytes, destination, "ComputeRequest", [&](Parser& parser) {
    return parser.ForEachField([&](uint32_t tag) {
      if (tag != Tag(1, kLengthDelimited)) return parser.Skip(tag);
      const int index = header->items_size();
      v1::ComputeItem* item = header->add_items();
      return parser.SubMessage([&] {
        return parser.ForEachField([&](uint32_t item_tag) {
          switch (item_tag) {
            case Tag(1, kLengthDelimited):
              return parser.Tensor(index, TensorField::kInput, item->mutable_input());
            case Tag(4, kLengthDelimited):
              return parser.Tensor(index, TensorField::kGradOutput, item->mutable_grad_output());
            case Tag(2, kLengthDelimited): {
              uint32_t length = 0;
              std::string activation;
              if (!parser.in().ReadVarint32(&length) ||
                  !parser.in().ReadString(&activation, static_cast<int>(length))) {
                return parser.Fail("truncated activation");
              }
              return item->mutable_activation()->MergeFromString(activation) ||
                     parser.Fail("bad activation message");
            }
            case Tag(3, kVarint): {
              uint64_t mode = 0;
              if (!parser.in().ReadVarint64(&mode)) return parser.Fail("truncated mode");
              item->set_mode(static_cast<v1::Mode>(static_cast<int32_t>(mode)));
              return true;
            }
            default:
              return parser.Skip(item_tag);
          }
        });
      });
    });
  });
}

absl::Status ParseComputeResponse(grpc::ByteBuffer* bytes, v1::ComputeResponse* header,
                                  DataDestination destination) {
  header->Clear();
  return ParseByteBuffer(bytes, destination, "ComputeResponse", [&](Parser& parser) {
    return parser.ForEachField([&](uint32_t tag) {
      if (tag != Tag(1, kLengthDelimited)) return parser.Skip(tag);
      const int index = header->results_size();
      v1::ComputeResult* result = header->add_results();
      return parser.SubMessage([&] {
        return parser.ForEachField([&](uint32_t result_tag) {
          switch (result_tag) {
            case Tag(1, kLengthDelimited):
              return parser.Tensor(index, TensorField::kOutput, result->mutable_output());
            case Tag(2, kLengthDelimited):
              return parser.Tensor(index, TensorField::kGradInput, result->mutable_grad_input());
            case Tag(3, kLengthDelimited):
              return parser.Tensor(index, TensorField::kGradWeight,
                                   result->mutable_grad_weight());
            default:
              return parser.Skip(result_tag);
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
  size_t size = 0;
  for (const ResultToEncode& result : results) {
    size += FieldSize(OptionalTensorFieldSize(result.output) +
                      OptionalTensorFieldSize(result.grad_input) +
                      OptionalTensorFieldSize(result.grad_weight));
  }
  SliceWriter writer(size);
  for (ResultToEncode& result : results) {
    writer.FieldHeader(1, OptionalTensorFieldSize(result.output) +
                              OptionalTensorFieldSize(result.grad_input) +
                              OptionalTensorFieldSize(result.grad_weight));
    if (result.output.has_value()) writer.Tensor(1, std::move(*result.output));
    if (result.grad_input.has_value()) writer.Tensor(2, std::move(*result.grad_input));
    if (result.grad_weight.has_value()) writer.Tensor(3, std::move(*result.grad_weight));
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
    writer.FieldHeader(1, FieldSize(TensorSize(item.input.shape, item.input.dtype,
                                               item.input.data.size())) +
                              FieldSize(activation.size()) + mode_size +
                              OptionalTensorFieldSize(grad_output));
    writer.Tensor(1, std::move(item.input));
    writer.FieldHeader(2, activation.size());
    writer.Bytes(activation);
    if (item.mode != v1::MODE_UNSPECIFIED) {
      writer.Varint(Tag(3, kVarint));
      writer.Varint(static_cast<uint64_t>(item.mode));
    }
    if (item.grad_output.has_value()) writer.Tensor(4, std::move(*item.grad_output));
  }
  return writer.Finish();
}

grpc::Slice UnownedSlice(absl::Span<const char> data) {
  return grpc::Slice(data.data(), data.size(), grpc::Slice::STATIC_SLICE);
}

}  // namespace wire
}  // namespace actserve
