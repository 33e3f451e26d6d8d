// TLS, mutual TLS and bearer tokens end to end: the real `actserve` binary started with
// --tls_cert/--tls_key (and --tls_client_ca) and --auth_token_file, driven by the real
// `actctl` (--tls_ca, --tls_cert, --tls_key, --tls_server_name, --token_file) and by the
// SDK's ClientOptions::tls and ::token. The CAs and certificates are made with openssl at
// test time:
//
//   ca        signs "server" (localhost, 127.0.0.1), "named" (actserve.test only) and
//             "client";
//   other_ca  signs "intruder" (a client certificate the servers must refuse).
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "actserve/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/subprocess.h"
#include "tests/integration/test_certs.h"

namespace actserve {
namespace {

using ::actserve::integration::MakeCa;
using ::actserve::integration::MakeLeaf;
using ::actserve::integration::MakeWorkDir;
using ::actserve::integration::ProcessResult;
using ::actserve::integration::ReadWholeFile;
using ::actserve::integration::RunProcess;
using ::actserve::integration::ServerProcess;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// The token the servers accept. The test checks that it never shows up in any output.
constexpr char kToken[] = "tls-test-token-7f3a9c";

class TlsIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new std::string(MakeWorkDir());
    for (const absl::Status& made :
         {MakeCa(*pki_, "ca"), MakeLeaf(*pki_, "server", "ca", "DNS:localhost,IP:127.0.0.1"),
          MakeLeaf(*pki_, "named", "ca", "DNS:actserve.test"),
          MakeLeaf(*pki_, "client", "ca", "DNS:client.test"), MakeCa(*pki_, "other_ca"),
          MakeLeaf(*pki_, "intruder", "other_ca", "DNS:client.test")}) {
      ASSERT_TRUE(made.ok()) << made;
    }
    // The server's format: one token per line, '#' comments. The client's file holds the
    // token and a newline, as `echo token > file` writes it.
    std::ofstream(*pki_ + "/server_tokens") << "# accepted tokens\n" << kToken << "\n";
    std::ofstream(*pki_ + "/token") << kToken << "\n";
    std::ofstream(*pki_ + "/wrong_token") << "not-the-token\n";
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*pki_);
    delete pki_;
    pki_ = nullptr;
  }

  void SetUp() override { dir_ = MakeWorkDir(); }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  static std::string Pki(const std::string& name) { return *pki_ + "/" + name; }

  // TLS trusting our CA, with the client certificate `client` ("" for none).
  static TlsOptions Tls(const std::string& client = "") {
    TlsOptions tls;
    tls.ca_pem = ReadWholeFile(Pki("ca.crt"));
    if (!client.empty()) {
      tls.cert_file = Pki(client + ".crt");
      tls.key_file = Pki(client + ".key");
    }
    return tls;
  }

  // Starts actserve with the certificate `cert`, mutual TLS when `mutual`, and the token
  // file; waits until it serves (probing with `probe`).
  void StartServer(const std::string& cert, bool mutual, TlsOptions probe) {
    std::vector<std::string> flags = {"--tls_cert=" + Pki(cert + ".crt"),
                                      "--tls_key=" + Pki(cert + ".key"),
                                      "--auth_token_file=" + Pki("server_tokens")};
    if (mutual) flags.push_back("--tls_client_ca=" + Pki("ca.crt"));
    ClientOptions probe_options;
    probe_options.tls = std::move(probe);
    absl::StatusOr<std::unique_ptr<ServerProcess>> server =
        ServerProcess::Start(ACTSERVE_BINARY, dir_, flags, probe_options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  ProcessResult Actctl(std::vector<std::string> args) {
    args.insert(args.begin(), {ACTCTL_BINARY, "--target=" + server_->target()});
    ProcessResult result = RunProcess(args, dir_);
    EXPECT_THAT(result.out + result.err, Not(HasSubstr(kToken)));
    return result;
  }

  // Compute relu on [-1, 2]: exit 0 and y = [0, 2], or the failed run.
  static void ExpectRelu(const ProcessResult& run) {
    EXPECT_EQ(run.exit_code, 0) << run.err;
    EXPECT_THAT(run.out, HasSubstr("relu  float32  shape [2]"));
  }

  static std::string* pki_;
  std::string dir_;
  std::unique_ptr<ServerProcess> server_;
};

std::string* TlsIntegrationTest::pki_ = nullptr;

const std::vector<std::string> kRelu = {"compute", "--activation=relu", "--values=-1,2"};

std::vector<std::string> With(std::vector<std::string> flags,
                              const std::vector<std::string>& command) {
  flags.insert(flags.end(), command.begin(), command.end());
  return flags;
}

TEST_F(TlsIntegrationTest, ActctlWithTheCaAndTokenSucceedsAndFailsClearlyWithout) {
  ASSERT_NO_FATAL_FAILURE(StartServer("server", /*mutual=*/false, Tls()));
  const std::string ca = "--tls_ca=" + Pki("ca.crt");
  const std::string token = "--token_file=" + Pki("token");

  ExpectRelu(Actctl(With({ca, token}, kRelu)));
  const ProcessResult list = Actctl({ca, token, "list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("24 activations"));
  // Health checks stay open for probes: TLS is enough.
  const ProcessResult health = Actctl({ca, "health"});
  EXPECT_EQ(health.exit_code, 0) << health.err;
  EXPECT_EQ(health.out, "SERVING\n");

  // Plaintext to a TLS server: the handshake never happens.
  const ProcessResult plaintext = Actctl(With({token}, kRelu));
  EXPECT_EQ(plaintext.exit_code, 1);
  EXPECT_THAT(plaintext.err, HasSubstr("UNAVAILABLE"));
  EXPECT_THAT(Actctl({token, "health"}).err, HasSubstr("UNAVAILABLE"));

  // TLS that trusts another CA refuses the server's certificate.
  const ProcessResult untrusted = Actctl(With({"--tls_ca=" + Pki("other_ca.crt"), token}, kRelu));
  EXPECT_EQ(untrusted.exit_code, 1);
  EXPECT_THAT(untrusted.err, HasSubstr("UNAVAILABLE"));

  // No token, or a wrong one.
  const ProcessResult no_token = Actctl(With({ca}, kRelu));
  EXPECT_EQ(no_token.exit_code, 1);
  EXPECT_THAT(no_token.err, HasSubstr("UNAUTHENTICATED"));
  const ProcessResult wrong_token =
      Actctl(With({ca, "--token_file=" + Pki("wrong_token")}, {"list"}));
  EXPECT_EQ(wrong_token.exit_code, 1);
  EXPECT_THAT(wrong_token.err, HasSubstr("UNAUTHENTICATED"));
  EXPECT_THAT(wrong_token.err, Not(HasSubstr("not-the-token")));

  // Files that cannot be used are named.
  const ProcessResult missing_token = Actctl(With({ca, "--token_file=" + dir_ + "/none"}, kRelu));
  EXPECT_EQ(missing_token.exit_code, 1);
  EXPECT_THAT(missing_token.err, HasSubstr("cannot read '" + dir_ + "/none'"));
  const ProcessResult missing_ca = Actctl(With({"--tls_ca=" + dir_ + "/none.crt", token}, kRelu));
  EXPECT_EQ(missing_ca.exit_code, 1);
  EXPECT_THAT(missing_ca.err, HasSubstr("NOT_FOUND"));
  EXPECT_THAT(missing_ca.err, HasSubstr(dir_ + "/none.crt"));

  // The server never logs the token either.
  EXPECT_THAT(ReadWholeFile(server_->log_path()), Not(HasSubstr(kToken)));
}

TEST_F(TlsIntegrationTest, ActctlMutualTlsNeedsACertificateFromTheServersCa) {
  ASSERT_NO_FATAL_FAILURE(StartServer("server", /*mutual=*/true, Tls("client")));
  const std::string ca = "--tls_ca=" + Pki("ca.crt");
  const std::string token = "--token_file=" + Pki("token");

  ExpectRelu(Actctl(With(
      {ca, "--tls_cert=" + Pki("client.crt"), "--tls_key=" + Pki("client.key"), token}, kRelu)));
  const ProcessResult health =
      Actctl({ca, "--tls_cert=" + Pki("client.crt"), "--tls_key=" + Pki("client.key"), "health"});
  EXPECT_EQ(health.exit_code, 0) << health.err;

  const ProcessResult no_cert = Actctl(With({ca, token}, kRelu));
  EXPECT_EQ(no_cert.exit_code, 1);
  EXPECT_THAT(no_cert.err, HasSubstr("UNAVAILABLE"));

  const ProcessResult intruder = Actctl(With(
      {ca, "--tls_cert=" + Pki("intruder.crt"), "--tls_key=" + Pki("intruder.key"), token}, kRelu));
  EXPECT_EQ(intruder.exit_code, 1);
  EXPECT_THAT(intruder.err, HasSubstr("UNAVAILABLE"));

  // A certificate without its key is refused before any connection.
  const ProcessResult half = Actctl(With({ca, "--tls_cert=" + Pki("client.crt"), token}, kRelu));
  EXPECT_EQ(half.exit_code, 1);
  EXPECT_THAT(half.err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(half.err, HasSubstr("go together"));
}

TEST_F(TlsIntegrationTest, ActctlServerNameOverrideForACertificateThatNamesAHost) {
  TlsOptions probe = Tls();
  probe.server_name = "actserve.test";
  ASSERT_NO_FATAL_FAILURE(StartServer("named", /*mutual=*/false, probe));
  const std::string ca = "--tls_ca=" + Pki("ca.crt");
  const std::string token = "--token_file=" + Pki("token");

  // The target is 127.0.0.1, which the certificate does not name.
  const ProcessResult mismatch = Actctl(With({ca, token}, kRelu));
  EXPECT_EQ(mismatch.exit_code, 1);
  EXPECT_THAT(mismatch.err, HasSubstr("UNAVAILABLE"));
  ExpectRelu(Actctl(With({ca, "--tls_server_name=actserve.test", token}, kRelu)));
}

TEST_F(TlsIntegrationTest, SdkTlsAndToken) {
  ASSERT_NO_FATAL_FAILURE(StartServer("server", /*mutual=*/true, Tls("client")));
  const std::vector<float> x = {-1, 2};
  const int64_t shape[] = {2};

  ClientOptions options;
  options.tls = Tls("client");
  options.token = kToken;
  const Client client(server_->target(), options);
  absl::StatusOr<TypedResult<float>> relu = client.Compute(x, shape, "relu");
  ASSERT_TRUE(relu.ok()) << relu.status();
  EXPECT_THAT(relu->output, ElementsAre(0, 2));
  EXPECT_THAT(relu->grad_input, ElementsAre(0, 1));
  absl::StatusOr<ServiceDescription> list = client.ListActivations();
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->activations.size(), 24u);
  // The token goes on streams too.
  std::vector<float> big(5000, -1.0f);
  absl::StatusOr<ItemOutput> chunked =
      client.ComputeChunked(MakeTensorView(big, std::vector<int64_t>{50, 100}), "relu",
                            Mode::kForward, std::nullopt, std::nullopt, /*chunk_bytes=*/4000);
  ASSERT_TRUE(chunked.ok()) << chunked.status();

  // From a token file, as actctl does.
  absl::StatusOr<std::string> token = ReadTokenFile(Pki("token"));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, kToken);

  ClientOptions no_token = options;
  no_token.token = "";
  absl::Status unauthenticated =
      Client(server_->target(), no_token).Compute(x, shape, "relu").status();
  EXPECT_EQ(unauthenticated.code(), absl::StatusCode::kUnauthenticated) << unauthenticated;
  no_token.token = "wrong";
  EXPECT_EQ(Client(server_->target(), no_token).ListActivations().status().code(),
            absl::StatusCode::kUnauthenticated);

  ClientOptions plaintext;
  plaintext.token = kToken;
  plaintext.max_attempts = 1;
  EXPECT_EQ(Client(server_->target(), plaintext).Compute(x, shape, "relu").status().code(),
            absl::StatusCode::kUnavailable);

  ClientOptions no_cert = options;
  no_cert.tls = Tls();
  no_cert.max_attempts = 1;
  EXPECT_EQ(Client(server_->target(), no_cert).Compute(x, shape, "relu").status().code(),
            absl::StatusCode::kUnavailable);

  // Options that cannot be used fail every call, naming the problem and not the token.
  ClientOptions missing = options;
  missing.tls->cert_file = dir_ + "/missing.crt";
  absl::Status missing_status = Client(server_->target(), missing).Health().status();
  EXPECT_EQ(missing_status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing_status.message(), HasSubstr("tls.cert_file: cannot read '" + dir_));
  ClientOptions bad_token = options;
  bad_token.token = absl::StrCat(kToken, "\n");
  absl::Status bad_token_status =
      Client(server_->target(), bad_token).Compute(x, shape, "relu").status();
  EXPECT_EQ(bad_token_status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_token_status.message(), Not(HasSubstr(kToken)));
}

}  // namespace
}  // namespace actserve
