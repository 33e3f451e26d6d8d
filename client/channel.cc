#include "client/channel.h"

#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace actserve {
namespace client_internal {

// Every method of both services is idempotent, so a retry can never apply anything twice;
// UNAVAILABLE covers a server that is not reachable yet or a pod that is going away.
std::string ServiceConfigJson(const ClientOptions& options) {
  std::string json = "{";
  if (!options.load_balancing_policy.empty()) {
    absl::StrAppend(&json, R"("loadBalancingConfig": [{")", options.load_balancing_policy,
                    R"(": {}}])");
  }
  if (options.max_attempts > 1) {
    if (json.size() > 1) json += ", ";
    absl::StrAppend(&json,
                    R"("methodConfig": [{"name": [{"service": "actserve.v1.ActivationService"},)",
                    R"( {"service": "grpc.health.v1.Health"}], "retryPolicy": {"maxAttempts": )",
                    options.max_attempts,
                    R"(, "initialBackoff": "0.1s", "maxBackoff": "1s", "backoffMultiplier": 2,)",
                    R"( "retryableStatusCodes": ["UNAVAILABLE"]}}])");
  }
  json += "}";
  return json;
}

std::shared_ptr<grpc::Channel> MakeChannel(absl::string_view target, const ClientOptions& options) {
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(options.max_message_bytes);
  arguments.SetMaxSendMessageSize(options.max_message_bytes);
  arguments.SetServiceConfigJSON(ServiceConfigJson(options));
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      options.credentials != nullptr ? options.credentials : grpc::InsecureChannelCredentials();
  return grpc::CreateCustomChannel(std::string(target), credentials, arguments);
}

}  // namespace client_internal
}  // namespace actserve
