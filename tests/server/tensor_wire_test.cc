// proto/tensor_wire.h against the generated protobuf code, which is the oracle: whatever
// protobuf writes, ParseCompute* reads with the same fields and data; whatever Encode*
// writes, protobuf parses back to the same message.
#include "proto/tensor_wire.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "actserve/v1/activation.pb.h"

namespace actserve {
namespace wire {
namespace {

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

}  // namespace
}  // namespace wire
}  // namespace actserve
