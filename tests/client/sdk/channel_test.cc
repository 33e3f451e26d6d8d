#include "client/sdk/channel.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "actserve/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace actserve {
namespace client_internal {
namespace {

TEST(ServiceConfigJsonTest, DefaultsAreRoundRobinWithRetries) {
  EXPECT_EQ(ServiceConfigJson(ClientOptions()),
            R"({"loadBalancingConfig": [{"round_robin": {}}], "methodConfig": [{"name": )"
            R"([{"service": "actserve.v1.ActivationService"}, {"service": )"
            R"("grpc.health.v1.Health"}], "retryPolicy": {"maxAttempts": 3, "initialBackoff": )"
            R"("0.1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": )"
            R"(["UNAVAILABLE", "CANCELLED"]}}]})");
}

TEST(ServiceConfigJsonTest, LeavesOutWhatIsSwitchedOff) {
  ClientOptions options;
  options.load_balancing_policy = "";
  options.max_attempts = 1;
  EXPECT_EQ(ServiceConfigJson(options), "{}");
  options.load_balancing_policy = "pick_first";
  EXPECT_EQ(ServiceConfigJson(options), R"({"loadBalancingConfig": [{"pick_first": {}}]})");
}

using ::testing::HasSubstr;
using ::testing::Not;

// A file under the test's temporary directory holding `contents`; its path.
std::string WriteTempFile(const std::string& name, const std::string& contents) {
  const std::string path = ::testing::TempDir() + "/channel_test_" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
  return path;
}

TEST(ReadTokenFileTest, StripsTheTrailingNewline) {
  const std::string path = WriteTempFile("token", "abc.DEF-123_~+/=\n");
  absl::StatusOr<std::string> token = ReadTokenFile(path);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, "abc.DEF-123_~+/=");
  std::remove(path.c_str());
}

TEST(ReadTokenFileTest, RefusesMissingEmptyAndMultiWordFilesWithoutShowingTheToken) {
  const std::string missing = ::testing::TempDir() + "/channel_test_no_such_token";
  absl::StatusOr<std::string> none = ReadTokenFile(missing);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(none.status().message(), HasSubstr("'" + missing + "'"));

  const std::string empty = WriteTempFile("empty_token", " \n");
  EXPECT_EQ(ReadTokenFile(empty).status().code(), absl::StatusCode::kInvalidArgument);
  std::remove(empty.c_str());

  const std::string two_lines = WriteTempFile("two_tokens", "secret-one\nsecret-two\n");
  absl::StatusOr<std::string> two = ReadTokenFile(two_lines);
  EXPECT_EQ(two.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(two.status().message(), HasSubstr("character 11 of 21"));
  EXPECT_THAT(two.status().message(), Not(HasSubstr("secret")));
  std::remove(two_lines.c_str());
}

TEST(CheckTokenTest, VisibleAsciiOnly) {
  EXPECT_TRUE(CheckToken("").ok());
  EXPECT_TRUE(CheckToken("eyJhbGciOi.J9-_~+/=").ok());
  EXPECT_EQ(CheckToken("two words").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckToken("tab\there").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckToken("caf\xc3\xa9").code(), absl::StatusCode::kInvalidArgument);
}

TEST(MakeCredentialsTest, PlaintextTlsAndTheirErrors) {
  ClientOptions options;
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> plaintext = MakeCredentials(options);
  ASSERT_TRUE(plaintext.ok()) << plaintext.status();
  EXPECT_NE(*plaintext, nullptr);

  // gRPC does not look at PEM contents until the handshake; the client checks the
  // framing, the pairing and the sources.
  const std::string pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  options.tls = TlsOptions();
  options.tls->ca_pem = pem;
  EXPECT_TRUE(MakeCredentials(options).ok());

  options.tls->ca_file = WriteTempFile("ca.pem", pem);
  absl::Status twice = MakeCredentials(options).status();
  EXPECT_EQ(twice.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(twice.message(), HasSubstr("ca_file or ca_pem, not both"));
  options.tls->ca_pem.clear();
  EXPECT_TRUE(MakeCredentials(options).ok());

  options.tls->cert_pem = pem;
  absl::Status no_key = MakeCredentials(options).status();
  EXPECT_EQ(no_key.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(no_key.message(), HasSubstr("go together"));

  options.tls->cert_pem.clear();
  options.tls->ca_file = WriteTempFile("not_pem", "just some bytes");
  absl::Status not_pem = MakeCredentials(options).status();
  EXPECT_EQ(not_pem.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(not_pem.message(), HasSubstr("is not PEM"));

  options.tls->ca_file = ::testing::TempDir() + "/channel_test_no_such_ca.pem";
  absl::Status missing = MakeCredentials(options).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("tls.ca_file: cannot read"));

  options.credentials = *plaintext;
  EXPECT_EQ(MakeCredentials(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.tls.reset();
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> given = MakeCredentials(options);
  ASSERT_TRUE(given.ok());
  EXPECT_EQ(*given, *plaintext);
}

TEST(MakeChannelTest, RefusesABadTokenAndAClientReportsItOnEveryCall) {
  ClientOptions options;
  options.token = "line\nbreak";
  EXPECT_EQ(MakeChannel("localhost:1", options).status().code(),
            absl::StatusCode::kInvalidArgument);
  const Client client("localhost:1", options);
  EXPECT_EQ(client.Health().status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client.ListActivations().status().code(), absl::StatusCode::kInvalidArgument);
  options.token = "fine";
  EXPECT_TRUE(MakeChannel("localhost:1", options).ok());
}

}  // namespace
}  // namespace client_internal
}  // namespace actserve
