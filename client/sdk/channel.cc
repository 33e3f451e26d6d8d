#include "client/sdk/channel.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cerrno>
#include <cstdio>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "grpc/impl/codegen/grpc_types.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace actserve {
namespace client_internal {
namespace {

// One PEM item of TlsOptions, given inline or as a file (or not at all: "").
absl::StatusOr<std::string> PemItem(const std::string& file, const std::string& pem,
                                    absl::string_view name) {
  if (!file.empty() && !pem.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls: give ", name, "_file or ", name, "_pem, not both"));
  }
  std::string contents = pem;
  if (!file.empty()) {
    absl::StatusOr<std::string> read = ReadFileContents(file, absl::StrCat("tls.", name, "_file"));
    if (!read.ok()) return read.status();
    contents = *std::move(read);
  }
  // Without this check a wrong file (a key given as the CA, say) only shows up as a failed
  // handshake, reported as UNAVAILABLE.
  if (!contents.empty() && contents.find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls.", name, file.empty() ? "_pem" : absl::StrCat("_file '", file, "'"),
        " is not PEM (no -----BEGIN line)"));
  }
  return contents;
}

}  // namespace

std::string JsonDuration(absl::Duration duration) {
  const int64_t nanos = std::max<int64_t>(absl::ToInt64Nanoseconds(duration), 0);
  std::string text = absl::StrCat(nanos / 1000000000);
  if (const int64_t fraction = nanos % 1000000000; fraction != 0) {
    std::string digits = absl::StrFormat("%09d", fraction);
    digits.erase(digits.find_last_not_of('0') + 1);
    absl::StrAppend(&text, ".", digits);
  }
  return text + "s";
}

// Every method of both services is idempotent, so a retry can never apply anything twice.
// UNAVAILABLE covers a server that is not reachable yet, one that died mid-call, and one
// that is draining. CANCELLED from the server covers the rest of a shutdown: gRPC's server
// cancels calls that reach it after its Shutdown began but before the client has read its
// GOAWAY, and calls still running when --shutdown_grace ends. gRPC never retries a call
// that the caller cancelled or whose deadline passed, so only those are retried.
std::string ServiceConfigJson(const ClientOptions& options) {
  std::string json = "{";
  if (!options.load_balancing_policy.empty()) {
    absl::StrAppend(&json, R"("loadBalancingConfig": [{")", options.load_balancing_policy,
                    R"(": {}}])");
  }
  if (options.health_checked_balancing) {
    if (json.size() > 1) json += ", ";
    json += R"("healthCheckConfig": {"serviceName": ""})";
  }
  if (options.max_attempts > 1 || options.wait_for_ready) {
    if (json.size() > 1) json += ", ";
    absl::StrAppend(&json,
                    R"("methodConfig": [{"name": [{"service": "actserve.v1.ActivationService"},)",
                    R"( {"service": "grpc.health.v1.Health"}])");
    if (options.wait_for_ready) json += R"(, "waitForReady": true)";
    if (options.max_attempts > 1) {
      absl::StrAppend(&json, R"(, "retryPolicy": {"maxAttempts": )", options.max_attempts,
                      R"(, "initialBackoff": ")", JsonDuration(options.initial_backoff),
                      R"(", "maxBackoff": ")", JsonDuration(options.max_backoff),
                      R"(", "backoffMultiplier": 2,)",
                      R"( "retryableStatusCodes": ["UNAVAILABLE", "CANCELLED"]})");
    }
    json += "}]";
  }
  json += "}";
  return json;
}

absl::StatusOr<std::string> ReadFileContents(absl::string_view path, absl::string_view what) {
  const std::string path_string(path);
  std::FILE* file = std::fopen(path_string.c_str(), "rb");
  if (file == nullptr) {
    const int error = errno;
    return absl::ErrnoToStatus(error, absl::StrCat(what, ": cannot read '", path, "'"));
  }
  std::string contents;
  char buffer[4096];
  size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof(buffer), file)) > 0) contents.append(buffer, got);
  const bool failed = std::ferror(file) != 0;
  const int error = errno;
  std::fclose(file);
  if (failed) return absl::ErrnoToStatus(error, absl::StrCat(what, ": cannot read '", path, "'"));
  return contents;
}

absl::Status CheckToken(absl::string_view token) {
  for (size_t i = 0; i < token.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(token[i]);
    // gRPC sends only printable ASCII in a text header; a space would end the token.
    if (c <= ' ' || c >= 0x7f) {
      return absl::InvalidArgumentError(absl::StrCat(
          "token: character ", i + 1, " of ", token.size(),
          " is not visible ASCII (a token is one word; the token itself is not shown)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeCredentials(
    const ClientOptions& options) {
  if (options.credentials != nullptr) {
    if (options.tls.has_value()) {
      return absl::InvalidArgumentError("give ClientOptions::credentials or tls, not both");
    }
    return options.credentials;
  }
  if (!options.tls.has_value()) return grpc::InsecureChannelCredentials();
  const TlsOptions& tls = *options.tls;
  grpc::SslCredentialsOptions ssl;
  for (auto [file, pem, name, out] :
       {std::tuple<const std::string&, const std::string&, absl::string_view, std::string*>{
            tls.ca_file, tls.ca_pem, "ca", &ssl.pem_root_certs},
        {tls.cert_file, tls.cert_pem, "cert", &ssl.pem_cert_chain},
        {tls.key_file, tls.key_pem, "key", &ssl.pem_private_key}}) {
    absl::StatusOr<std::string> item = PemItem(file, pem, name);
    if (!item.ok()) return item.status();
    *out = *std::move(item);
  }
  if (ssl.pem_cert_chain.empty() != ssl.pem_private_key.empty()) {
    return absl::InvalidArgumentError(
        "tls: a client certificate and its key go together: give both (for mutual TLS) or "
        "neither");
  }
  return grpc::SslCredentials(ssl);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(absl::string_view target,
                                                           const ClientOptions& options) {
  absl::Status token = CheckToken(options.token);
  if (!token.ok()) return token;
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeCredentials(options);
  if (!credentials.ok()) return credentials.status();
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(options.max_message_bytes);
  arguments.SetMaxSendMessageSize(options.max_message_bytes);
  arguments.SetServiceConfigJSON(ServiceConfigJson(options));
  arguments.SetInt(GRPC_ARG_PER_RPC_RETRY_BUFFER_SIZE, options.retry_buffer_bytes);
  if (options.tls.has_value() && !options.tls->server_name.empty()) {
    arguments.SetSslTargetNameOverride(options.tls->server_name);
  }
  return grpc::CreateCustomChannel(std::string(target), *credentials, arguments);
}

void PrepareContext(const ClientOptions& options, grpc::ClientContext* context) {
  if (options.deadline != absl::InfiniteDuration()) {
    context->set_deadline(std::chrono::system_clock::now() +
                          absl::ToChronoNanoseconds(options.deadline));
  }
  if (!options.token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", options.token));
  }
}

}  // namespace client_internal
}  // namespace actserve
