// A Client whose options cannot be used (an unreadable TLS file, a malformed token)
// returns that setup error from every method that talks to the server, whatever the
// method's arguments, and never opens a connection. The target of every Client here is a
// local socket that listens but never accepts: a connection attempt would wait in its
// backlog, where each test looks for it.
#include "actserve/client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <fstream>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"

namespace actserve {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A TCP socket on 127.0.0.1 that listens and never accepts.
class Listener {
 public:
  Listener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        listen(fd_, 16) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1: errno " << errno;
      return;
    }
    port_ = ntohs(address.sin_port);
  }
  ~Listener() {
    if (fd_ >= 0) close(fd_);
  }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  std::string target() const { return absl::StrCat("127.0.0.1:", port_); }

  // True when a connection has arrived (it is taken from the backlog and closed).
  bool Connected() const {
    const int connection = accept(fd_, nullptr, nullptr);
    if (connection < 0) return false;
    close(connection);
    return true;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

std::string WriteTempFile(const std::string& name, const std::string& contents) {
  const std::string path = ::testing::TempDir() + "/client_test_" + name;
  std::ofstream(path) << contents;
  return path;
}

// One way a Client's options fail, and the error every call must then return.
struct SetupCase {
  std::string name;
  // Options for the Client(target, options) constructor, or, with `given_channel`, for
  // Client(channel, options), of which only the token applies.
  ClientOptions options;
  bool given_channel = false;
  absl::StatusCode code;
  std::string message_has;      // e.g. the file's path
  std::string message_has_not;  // the token must never be shown
};

// Test names and ctest's listing show the case's name, not the struct's bytes.
void PrintTo(const SetupCase& setup, std::ostream* os) { *os << setup.name; }

std::string PrintCaseName(const ::testing::TestParamInfo<SetupCase>& info) {
  return info.param.name;
}

std::vector<SetupCase> SetupCases() {
  std::vector<SetupCase> cases;
  {
    SetupCase missing_ca{"MissingCaFile"};
    const std::string path = ::testing::TempDir() + "/client_test_no_such_ca.pem";
    missing_ca.options.tls = TlsOptions();
    missing_ca.options.tls->ca_file = path;
    missing_ca.code = absl::StatusCode::kNotFound;
    missing_ca.message_has = absl::StrCat("tls.ca_file: cannot read '", path, "'");
    cases.push_back(missing_ca);
  }
  {
    // A directory opens but cannot be read (EISDIR, which absl maps to
    // FailedPrecondition).
    SetupCase directory_cert{"DirectoryAsCertFile"};
    const std::string path = ::testing::TempDir();
    directory_cert.options.tls = TlsOptions();
    directory_cert.options.tls->cert_file = path;
    directory_cert.options.tls->key_pem = "-----BEGIN PRIVATE KEY-----\n";
    directory_cert.code = absl::StatusCode::kFailedPrecondition;
    directory_cert.message_has = absl::StrCat("tls.cert_file: cannot read '", path, "'");
    cases.push_back(directory_cert);
  }
  {
    // Readable anyway when the tests run as root; then the test is skipped.
    SetupCase unreadable_key{"Mode000KeyFile"};
    const std::string path = WriteTempFile("mode_000_key.pem", "-----BEGIN PRIVATE KEY-----\n");
    chmod(path.c_str(), 0);
    unreadable_key.options.tls = TlsOptions();
    unreadable_key.options.tls->cert_pem = "-----BEGIN CERTIFICATE-----\n";
    unreadable_key.options.tls->key_file = path;
    unreadable_key.code = absl::StatusCode::kPermissionDenied;
    unreadable_key.message_has = absl::StrCat("tls.key_file: cannot read '", path, "'");
    cases.push_back(unreadable_key);
  }
  for (bool given_channel : {false, true}) {
    SetupCase bad_token{given_channel ? "TwoWordTokenOnAGivenChannel" : "TwoWordToken"};
    bad_token.options.token = "secret words";
    bad_token.given_channel = given_channel;
    bad_token.code = absl::StatusCode::kInvalidArgument;
    bad_token.message_has = "token: character 7 of 12 is not visible ASCII";
    bad_token.message_has_not = "secret";
    cases.push_back(bad_token);
  }
  return cases;
}

class UnusableOptionsTest : public ::testing::TestWithParam<SetupCase> {
 protected:
  void SetUp() override {
    const SetupCase& setup = GetParam();
    if (setup.code == absl::StatusCode::kPermissionDenied &&
        access(setup.options.tls->key_file.c_str(), R_OK) == 0) {
      GTEST_SKIP() << "a mode-000 file is readable by this user (root)";
    }
    if (setup.given_channel) {
      client_ = std::make_unique<Client>(
          grpc::CreateChannel(listener_.target(), grpc::InsecureChannelCredentials()),
          setup.options);
    } else {
      client_ = std::make_unique<Client>(listener_.target(), setup.options);
    }
  }

  void TearDown() override {
    EXPECT_FALSE(listener_.Connected()) << "the client connected to its target";
  }

  void ExpectSetupError(const absl::Status& status) const {
    const SetupCase& setup = GetParam();
    EXPECT_EQ(status.code(), setup.code) << status;
    EXPECT_THAT(status.message(), HasSubstr(setup.message_has));
    if (!setup.message_has_not.empty()) {
      EXPECT_THAT(status.message(), Not(HasSubstr(setup.message_has_not)));
    }
  }

  Listener listener_;
  std::unique_ptr<Client> client_;
  const std::vector<float> x_ = {-2, -1, 0, 1, 2, 3};
  const std::vector<int64_t> shape_ = {2, 3};
};

TEST_P(UnusableOptionsTest, ComputeFloat) {
  ExpectSetupError(client_->Compute(absl::MakeConstSpan(x_), shape_, "relu").status());
  ExpectSetupError(client_
                       ->Compute(absl::MakeConstSpan(x_), shape_, "relu", Mode::kBackward,
                                 absl::MakeConstSpan(x_))
                       .status());
}

TEST_P(UnusableOptionsTest, ComputeDouble) {
  const std::vector<double> x = {-1, 0, 1};
  const int64_t shape[] = {3};
  ExpectSetupError(client_->Compute(absl::MakeConstSpan(x), shape, "gelu").status());
}

TEST_P(UnusableOptionsTest, ComputeFloat16) {
  const std::vector<uint16_t> x = {0xbc00, 0x0000, 0x3c00};  // -1, 0, 1
  const int64_t shape[] = {3};
  ExpectSetupError(
      client_->Compute(DType::kFloat16, absl::MakeConstSpan(x), shape, "silu").status());
}

TEST_P(UnusableOptionsTest, ComputeBatch) {
  Batch batch;
  batch.Add(MakeTensorView(x_, shape_), "tanh").Add(MakeTensorView(x_, shape_), "sigmoid");
  ASSERT_TRUE(batch.status().ok()) << batch.status();
  ExpectSetupError(client_->Compute(batch).status());
  ExpectSetupError(client_->Compute(Batch()).status());
}

TEST_P(UnusableOptionsTest, ComputeStream) {
  std::vector<Batch> batches(2);
  batches[0].Add(MakeTensorView(x_, shape_), "relu");
  batches[1].Add(MakeTensorView(x_, shape_), "softplus");
  ExpectSetupError(client_->ComputeStream(batches).status());
  ExpectSetupError(client_->ComputeStream({}).status());
}

TEST_P(UnusableOptionsTest, ComputeChunked) {
  // 8-byte chunks: three chunks, were any sent.
  ExpectSetupError(client_
                       ->ComputeChunked(MakeTensorView(x_, shape_), "relu", Mode::kForwardBackward,
                                        std::nullopt, std::nullopt,
                                        /*chunk_bytes=*/8)
                       .status());
  ExpectSetupError(client_->ComputeChunked(MakeTensorView(x_, shape_), "softmax(dim=0)").status());
}

TEST_P(UnusableOptionsTest, ComputeChunkedInto) {
  std::vector<float> output(x_.size()), grad_input(x_.size());
  const Client::ChunkedOutputs outputs{
      absl::MakeSpan(reinterpret_cast<char*>(output.data()), output.size() * sizeof(float)),
      absl::MakeSpan(reinterpret_cast<char*>(grad_input.data()),
                     grad_input.size() * sizeof(float))};
  ExpectSetupError(client_
                       ->ComputeChunkedInto(MakeTensorView(x_, shape_), "relu",
                                            Mode::kForwardBackward, std::nullopt, std::nullopt,
                                            outputs, /*chunk_bytes=*/8, /*window=*/2)
                       .status());
}

TEST_P(UnusableOptionsTest, ListActivations) {
  ExpectSetupError(client_->ListActivations().status());
}

TEST_P(UnusableOptionsTest, Health) {
  ExpectSetupError(client_->Health().status());
  ExpectSetupError(client_->Health("actserve.v1.ActivationService").status());
}

// The options are the first thing a call checks: arguments that are wrong too are not
// reported instead.
TEST_P(UnusableOptionsTest, TheSetupErrorComesBeforeArgumentErrors) {
  const std::vector<uint16_t> bits = {0, 0, 0, 0, 0, 0};
  ExpectSetupError(
      client_->Compute(DType::kFloat32, absl::MakeConstSpan(bits), shape_, "relu").status());
  ExpectSetupError(
      client_->Compute(absl::MakeConstSpan(x_), shape_, "no_such_activation").status());
  Batch bad_batch;
  bad_batch.Add(MakeTensorView(x_, shape_), "relu(");
  ASSERT_FALSE(bad_batch.status().ok());
  ExpectSetupError(client_->Compute(bad_batch).status());
  ExpectSetupError(client_->ComputeStream(absl::MakeConstSpan(&bad_batch, 1)).status());
  const int64_t wrong_shape[] = {4, 3};
  ExpectSetupError(client_->ComputeChunked(MakeTensorView(x_, wrong_shape), "relu").status());
  ExpectSetupError(client_
                       ->ComputeChunkedInto(MakeTensorView(x_, shape_), "relu",
                                            Mode::kForwardBackward, std::nullopt, std::nullopt,
                                            Client::ChunkedOutputs{}, /*chunk_bytes=*/0)
                       .status());
}

INSTANTIATE_TEST_SUITE_P(EveryCall, UnusableOptionsTest, ::testing::ValuesIn(SetupCases()),
                         PrintCaseName);

}  // namespace
}  // namespace actserve
