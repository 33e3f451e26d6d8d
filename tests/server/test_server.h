// Test support for the server suites: a real actserve server listening on a loopback
// port, a real TCP channel to it, and helpers that build and read wire tensors.
//
//   TestServer server = StartTestServer();           // 127.0.0.1:0, default limits
//   v1::ComputeResponse response;
//   grpc::ClientContext context;
//   grpc::Status status = server.stub->Compute(&context, request, &response);
#ifndef ACTSERVE_TESTS_SERVER_TEST_SERVER_H_
#define ACTSERVE_TESTS_SERVER_TEST_SERVER_H_

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "actserve/v1/activation.grpc.pb.h"
#include "server/logging.h"
#include "server/server.h"
#include "server/server_options.h"
#include "src/dtype.h"

namespace actserve {
namespace server {
namespace testing {

struct TestServer {
  std::unique_ptr<Server> server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::ActivationService::Stub> stub;
};

// Starts a server on 127.0.0.1 with an ephemeral port (options.address is overridden)
// and connects to it over TCP. Fails the test (fatally) when the server cannot start.
inline TestServer StartTestServer(ServerOptions options = {}) {
  SetLogLevel(LogLevel::kWarning);  // one start/stop line per test is noise here
  options.address = "127.0.0.1:0";
  options.threads = options.threads == 0 ? 2 : options.threads;
  TestServer test;
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
  EXPECT_TRUE(server.ok()) << server.status();
  if (!server.ok()) return test;
  test.server = std::move(*server);
  grpc::ChannelArguments args;
  // The client must not refuse what the server under test is meant to refuse.
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  // No retry filter: in gRPC 1.51, when a synchronous client cancels a stream or its
  // deadline passes while a Read is pending on another thread, that Read sometimes never
  // returns if the call went through the retry filter (StreamStressTest hung in about one
  // run of ten; in none of hundreds without it). The SDK's callback-based streams are
  // checked apart (ClientIntegrationTest.SdkStreamsEndedByTheirDeadlineAlwaysReturn).
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  test.channel =
      grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(test.server->port()),
                                grpc::InsecureChannelCredentials(), args);
  test.stub = v1::ActivationService::NewStub(test.channel);
  return test;
}

// --- Tensors. Values are given and returned as doubles, converted to/from the dtype. ---

inline std::string EncodeValues(DType dtype, const std::vector<double>& values) {
  std::string bytes;
  for (double value : values) {
    switch (dtype) {
      case DType::kFloat32: {
        const float f = static_cast<float>(value);
        bytes.append(reinterpret_cast<const char*>(&f), sizeof(f));
        break;
      }
      case DType::kFloat64:
        bytes.append(reinterpret_cast<const char*>(&value), sizeof(value));
        break;
      case DType::kFloat16:
      case DType::kBFloat16: {
        const uint16_t bits =
            dtype == DType::kFloat16 ? RoundToFloat16(value) : RoundToBFloat16(value);
        bytes.append(reinterpret_cast<const char*>(&bits), sizeof(bits));
        break;
      }
      case DType::kUnspecified:
        break;
    }
  }
  return bytes;
}

inline v1::Tensor MakeTensor(v1::DType dtype, std::vector<int64_t> shape,
                             const std::vector<double>& values) {
  v1::Tensor tensor;
  tensor.set_dtype(dtype);
  for (int64_t dim : shape) tensor.add_shape(dim);
  tensor.set_data(EncodeValues(static_cast<DType>(dtype), values));
  return tensor;
}

inline v1::Tensor F32(std::vector<int64_t> shape, const std::vector<double>& values) {
  return MakeTensor(v1::DTYPE_FLOAT32, std::move(shape), values);
}
inline v1::Tensor F64(std::vector<int64_t> shape, const std::vector<double>& values) {
  return MakeTensor(v1::DTYPE_FLOAT64, std::move(shape), values);
}

// The values of `tensor`, widened to double. An empty vector for an unknown dtype.
inline std::vector<double> Values(const v1::Tensor& tensor) {
  std::vector<double> values;
  const std::string& data = tensor.data();
  switch (tensor.dtype()) {
    case v1::DTYPE_FLOAT32:
      for (size_t i = 0; i + 4 <= data.size(); i += 4) {
        float f;
        std::memcpy(&f, data.data() + i, 4);
        values.push_back(f);
      }
      break;
    case v1::DTYPE_FLOAT64:
      for (size_t i = 0; i + 8 <= data.size(); i += 8) {
        double d;
        std::memcpy(&d, data.data() + i, 8);
        values.push_back(d);
      }
      break;
    case v1::DTYPE_FLOAT16:
    case v1::DTYPE_BFLOAT16:
      for (size_t i = 0; i + 2 <= data.size(); i += 2) {
        uint16_t bits;
        std::memcpy(&bits, data.data() + i, 2);
        values.push_back(tensor.dtype() == v1::DTYPE_FLOAT16 ? Float16ToDouble(bits)
                                                             : BFloat16ToDouble(bits));
      }
      break;
    default:
      break;
  }
  return values;
}

inline std::vector<int64_t> Shape(const v1::Tensor& tensor) {
  return std::vector<int64_t>(tensor.shape().begin(), tensor.shape().end());
}

// An item computing relu on a float32 tensor, the simplest valid item; tests then break
// one thing about it.
inline v1::ComputeItem ReluItem(std::vector<int64_t> shape,
                                const std::vector<double>& x) {
  v1::ComputeItem item;
  *item.mutable_input() = F32(std::move(shape), x);
  item.mutable_activation()->mutable_relu();
  return item;
}

// A one-item request of relu([-2, -1, 0, 1, 2]) that must succeed.
inline v1::ComputeRequest ValidRequest() {
  v1::ComputeRequest request;
  *request.add_items() = ReluItem({5}, {-2, -1, 0, 1, 2});
  return request;
}

// Calls Compute and returns its status; `response` may be null.
inline grpc::Status CallCompute(const TestServer& server,
                                const v1::ComputeRequest& request,
                                v1::ComputeResponse* response = nullptr) {
  v1::ComputeResponse ignored;
  grpc::ClientContext context;
  return server.stub->Compute(&context, request, response ? response : &ignored);
}

}  // namespace testing
}  // namespace server
}  // namespace actserve

#endif  // ACTSERVE_TESTS_SERVER_TEST_SERVER_H_
