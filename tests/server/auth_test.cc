// Bearer-token authentication: the token file's format, the constant-time comparison,
// and a real server that refuses calls without a valid token while health checking and
// reflection stay open, re-reads its tokens on demand (SIGHUP in the binary), and never
// writes a token to its log.
#include "server/auth.h"

#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "server/logging.h"
#include "server/server.h"
#include "tests/server/grpc_test_util.h"
#include "tests/server/test_server.h"

namespace actserve {
namespace server {
namespace {

using ::actserve::server::testing::AddBearer;
using ::actserve::server::testing::HealthStatus;
using ::actserve::server::testing::kServing;
using ::actserve::server::testing::SafetyDeadline;
using ::actserve::server::testing::StartTestServer;
using ::actserve::server::testing::TempDir;
using ::actserve::server::testing::TestServer;
using ::actserve::server::testing::ValidRequest;
using ::actserve::server::testing::WriteFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ParseTokensTest, OnePerLineTrimmedWithCommentsAndBlankLinesSkipped) {
  absl::StatusOr<std::vector<std::string>> tokens =
      ParseTokens("# deploy tokens\n  alpha-1 \n\n\tbeta_2\r\n#gamma\n");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_THAT(*tokens, ElementsAre("alpha-1", "beta_2"));
}

TEST(ParseTokensTest, NoTokenIsAnError) {
  EXPECT_EQ(ParseTokens("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseTokens("# only a comment\n\n").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ParseTokensTest, InnerWhitespaceIsAnErrorNamingTheLineNotTheToken) {
  const absl::Status status = ParseTokens("good\nsecret part\n").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("line 2"));
  EXPECT_THAT(status.message(), Not(HasSubstr("secret")));
}

TEST(ConstantTimeEqualsTest, EqualOnlyForTheSameBytes) {
  EXPECT_TRUE(ConstantTimeEquals("token", "token"));
  EXPECT_FALSE(ConstantTimeEquals("tokeN", "token"));
  EXPECT_FALSE(ConstantTimeEquals("toke", "token"));    // a prefix
  EXPECT_FALSE(ConstantTimeEquals("tokenn", "token"));  // longer
  EXPECT_FALSE(ConstantTimeEquals("", "token"));
  // The secret repeated is not the secret.
  EXPECT_FALSE(ConstantTimeEquals("abab", "ab"));
}

class AuthServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    token_file_ = dir_.File("tokens");
    WriteFile(token_file_, "# two clients\nfirst-token-123\nsecond-token-456\n");
    ServerOptions options;
    options.auth_token_file = token_file_;
    server_ = StartTestServer(options);
    ASSERT_NE(server_.server, nullptr);
  }

  // Compute with `authorization` as the metadata value ("" sends none).
  grpc::Status ComputeWith(const std::string& authorization) {
    grpc::ClientContext context;
    context.set_deadline(SafetyDeadline());
    if (!authorization.empty()) context.AddMetadata("authorization", authorization);
    v1::ComputeResponse response;
    return server_.stub->Compute(&context, ValidRequest(), &response);
  }

  TempDir dir_;
  std::string token_file_;
  TestServer server_;
};

TEST_F(AuthServerTest, ComputeNeedsAValidBearerToken) {
  const grpc::Status missing = ComputeWith("");
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(missing.error_message(), HasSubstr("authorization: Bearer"));

  const grpc::Status wrong = ComputeWith("Bearer first-token-12");
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(wrong.error_message(), Not(HasSubstr("first-token")));

  EXPECT_EQ(ComputeWith("Basic first-token-123").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ComputeWith("first-token-123").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  EXPECT_TRUE(ComputeWith("Bearer first-token-123").ok());
  EXPECT_TRUE(ComputeWith("Bearer second-token-456").ok());
  EXPECT_TRUE(ComputeWith("bearer second-token-456").ok()) << "the scheme is case-blind";
}

TEST_F(AuthServerTest, StreamAndListActivationsNeedTheTokenToo) {
  {
    grpc::ClientContext context;
    context.set_deadline(SafetyDeadline());
    auto stream = server_.stub->ComputeStream(&context);
    v1::ComputeResponse response;
    EXPECT_FALSE(stream->Read(&response));
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext context;
    context.set_deadline(SafetyDeadline());
    AddBearer(&context, "first-token-123");
    auto stream = server_.stub->ComputeStream(&context);
    ASSERT_TRUE(stream->Write(ValidRequest()));
    v1::ComputeResponse response;
    ASSERT_TRUE(stream->Read(&response));
    ASSERT_TRUE(stream->WritesDone());
    EXPECT_TRUE(stream->Finish().ok());
  }
  v1::ListActivationsResponse list;
  {
    grpc::ClientContext context;
    context.set_deadline(SafetyDeadline());
    EXPECT_EQ(server_.stub->ListActivations(&context, {}, &list).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  grpc::ClientContext context;
  context.set_deadline(SafetyDeadline());
  AddBearer(&context, "second-token-456");
  EXPECT_TRUE(server_.stub->ListActivations(&context, {}, &list).ok());
}

TEST_F(AuthServerTest, HealthAndReflectionStayOpenForProbes) {
  EXPECT_EQ(HealthStatus(server_.channel, ""), kServing);
  EXPECT_EQ(HealthStatus(server_.channel, "actserve.v1.ActivationService"), kServing);

  grpc::GenericStub stub(server_.channel);
  grpc::ClientContext context;
  context.set_deadline(SafetyDeadline());
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* const tag = reinterpret_cast<void*>(1);
  void* got = nullptr;
  bool ok = false;
  call->StartCall(tag);
  ASSERT_TRUE(cq.Next(&got, &ok) && ok);
  // ServerReflectionRequest {string list_services = 7;} set to "".
  call->Write(testing::ToByteBuffer(std::string("\x3A\x00", 2)), tag);
  ASSERT_TRUE(cq.Next(&got, &ok) && ok);
  grpc::ByteBuffer reply;
  call->Read(&reply, tag);
  ASSERT_TRUE(cq.Next(&got, &ok) && ok) << "reflection answered without a token";
  EXPECT_THAT(testing::FromByteBuffer(reply), HasSubstr("actserve.v1.ActivationService"));
  context.TryCancel();
  grpc::Status finished;
  call->Finish(&finished, tag);
  cq.Next(&got, &ok);
  cq.Shutdown();
  while (cq.Next(&got, &ok)) {
  }
}

TEST_F(AuthServerTest, ReloadReplacesTheTokensAndABadFileKeepsTheOldOnes) {
  WriteFile(token_file_, "rotated-token-789\n");
  absl::StatusOr<size_t> reloaded = server_.server->ReloadTokens();
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_EQ(*reloaded, 1u);
  EXPECT_EQ(ComputeWith("Bearer first-token-123").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(ComputeWith("Bearer rotated-token-789").ok());

  WriteFile(token_file_, "# emptied by mistake\n");
  EXPECT_EQ(server_.server->ReloadTokens().status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ComputeWith("Bearer rotated-token-789").ok());
}

TEST_F(AuthServerTest, TokensNeverReachTheLog) {
  SetLogLevel(LogLevel::kDebug);
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(ComputeWith("Bearer wrong-secret-000").ok());
  EXPECT_TRUE(ComputeWith("Bearer first-token-123").ok());
  WriteFile(token_file_, "new-secret-999\n");
  EXPECT_TRUE(server_.server->ReloadTokens().ok());
  FlushLog();
  const std::string log = ::testing::internal::GetCapturedStderr();
  SetLogLevel(LogLevel::kWarning);
  EXPECT_THAT(log, HasSubstr("Compute UNAUTHENTICATED"));
  EXPECT_THAT(log, HasSubstr("Compute OK"));
  EXPECT_THAT(log, Not(HasSubstr("wrong-secret")));
  EXPECT_THAT(log, Not(HasSubstr("first-token")));
  EXPECT_THAT(log, Not(HasSubstr("new-secret")));
}

TEST(AuthStartTest, UnreadableOrEmptyTokenFileRefusesToStart) {
  TempDir dir;
  ServerOptions options;
  options.address = "127.0.0.1:0";
  options.auth_token_file = dir.File("absent");
  EXPECT_EQ(Server::Start(options).status().code(), absl::StatusCode::kInvalidArgument);
  WriteFile(dir.File("empty"), "\n");
  options.auth_token_file = dir.File("empty");
  EXPECT_EQ(Server::Start(options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AuthStartTest, ReloadWithoutATokenFileIsFailedPrecondition) {
  TestServer server = StartTestServer();
  ASSERT_NE(server.server, nullptr);
  EXPECT_EQ(server.server->ReloadTokens().status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace server
}  // namespace actserve
