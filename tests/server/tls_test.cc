// TLS and mutual TLS over real sockets. A throwaway CA and certificates are made with the
// openssl command at test time (nothing secret is committed): the server's and a
// client's certificate from one CA, and an "intruder" certificate from another CA.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "server/server.h"
#include "tests/server/grpc_test_util.h"
#include "tests/server/test_server.h"

namespace actserve {
namespace server {
namespace {

using ::actserve::server::testing::MakeCa;
using ::actserve::server::testing::MakeLeaf;
using ::actserve::server::testing::ReadFile;
using ::actserve::server::testing::SafetyDeadline;
using ::actserve::server::testing::TempDir;
using ::actserve::server::testing::ValidRequest;
using ::testing::HasSubstr;

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    ASSERT_FALSE(dir_->path().empty());
    ASSERT_TRUE(MakeCa(*dir_, "ca"));
    ASSERT_TRUE(MakeLeaf(*dir_, "server", "ca"));
    ASSERT_TRUE(MakeLeaf(*dir_, "client", "ca"));
    ASSERT_TRUE(MakeCa(*dir_, "other_ca"));
    ASSERT_TRUE(MakeLeaf(*dir_, "intruder", "other_ca"));
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  // Starts a TLS server on 127.0.0.1; mutual TLS when `mutual`.
  std::unique_ptr<Server> StartServer(bool mutual) {
    SetLogLevel(LogLevel::kWarning);
    ServerOptions options;
    options.address = "127.0.0.1:0";
    options.threads = 2;
    options.tls_cert_file = dir_->File("server.crt");
    options.tls_key_file = dir_->File("server.key");
    if (mutual) options.tls_client_ca_file = dir_->File("ca.crt");
    absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? std::move(*server) : nullptr;
  }

  // Calls Compute over `credentials`; the status of the call.
  static grpc::Status Call(const Server& server,
                           const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server.port()),
                                       credentials);
    auto stub = v1::ActivationService::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(SafetyDeadline());
    v1::ComputeResponse response;
    return stub->Compute(&context, ValidRequest(), &response);
  }

  // TLS trusting our CA; with the client certificate `client` ("" for none).
  static std::shared_ptr<grpc::ChannelCredentials> Tls(const std::string& client) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFile(dir_->File("ca.crt"));
    if (!client.empty()) {
      ssl.pem_cert_chain = ReadFile(dir_->File(client + ".crt"));
      ssl.pem_private_key = ReadFile(dir_->File(client + ".key"));
    }
    return grpc::SslCredentials(ssl);
  }

  static TempDir* dir_;
};

TempDir* TlsTest::dir_ = nullptr;

TEST_F(TlsTest, TlsClientIsServed) {
  std::unique_ptr<Server> server = StartServer(/*mutual=*/false);
  ASSERT_NE(server, nullptr);
  const grpc::Status status = Call(*server, Tls(""));
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(TlsTest, PlaintextClientToTlsServerFails) {
  std::unique_ptr<Server> server = StartServer(/*mutual=*/false);
  ASSERT_NE(server, nullptr);
  const grpc::Status status = Call(*server, grpc::InsecureChannelCredentials());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  // The failed handshake did not hurt the server.
  EXPECT_TRUE(Call(*server, Tls("")).ok());
}

TEST_F(TlsTest, ClientThatDistrustsTheServerCertificateFails) {
  std::unique_ptr<Server> server = StartServer(/*mutual=*/false);
  ASSERT_NE(server, nullptr);
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadFile(dir_->File("other_ca.crt"));
  EXPECT_EQ(Call(*server, grpc::SslCredentials(ssl)).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, MutualTlsServesAClientCertificateFromTheCa) {
  std::unique_ptr<Server> server = StartServer(/*mutual=*/true);
  ASSERT_NE(server, nullptr);
  const grpc::Status status = Call(*server, Tls("client"));
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(TlsTest, MutualTlsRefusesAClientWithoutCertificate) {
  std::unique_ptr<Server> server = StartServer(/*mutual=*/true);
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(Call(*server, Tls("")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Call(*server, grpc::InsecureChannelCredentials()).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, MutualTlsRefusesACertificateFromAnotherCa) {
  std::unique_ptr<Server> server = StartServer(/*mutual=*/true);
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(Call(*server, Tls("intruder")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(Call(*server, Tls("client")).ok());  // and the right one still works
}

TEST_F(TlsTest, BadTlsOptionsAreInvalidArgumentNamingTheFileNotItsContents) {
  ServerOptions options;
  options.address = "127.0.0.1:0";
  options.tls_cert_file = dir_->File("server.crt");
  EXPECT_EQ(Server::Start(options).status().code(), absl::StatusCode::kInvalidArgument)
      << "a certificate without its key";

  options.tls_cert_file.clear();
  options.tls_client_ca_file = dir_->File("ca.crt");
  EXPECT_EQ(Server::Start(options).status().code(), absl::StatusCode::kInvalidArgument)
      << "a client CA without a server certificate";

  options.tls_client_ca_file.clear();
  options.tls_cert_file = dir_->File("missing.crt");
  options.tls_key_file = dir_->File("server.key");
  absl::Status missing = Server::Start(options).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.message(), HasSubstr("missing.crt"));

  // A file that is not PEM: the message names it and quotes none of it.
  options.tls_cert_file = dir_->File("server.crt");
  options.tls_key_file = dir_->File("server.ext");
  absl::Status not_pem = Server::Start(options).status();
  EXPECT_EQ(not_pem.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(not_pem.message(), HasSubstr("server.ext"));
  EXPECT_THAT(std::string(not_pem.message()), ::testing::Not(HasSubstr("subjectAltName")));
}

}  // namespace
}  // namespace server
}  // namespace actserve
