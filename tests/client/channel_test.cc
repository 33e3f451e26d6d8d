#include "client/channel.h"

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
            R"(["UNAVAILABLE"]}}]})");
}

TEST(ServiceConfigJsonTest, LeavesOutWhatIsSwitchedOff) {
  ClientOptions options;
  options.load_balancing_policy = "";
  options.max_attempts = 1;
  EXPECT_EQ(ServiceConfigJson(options), "{}");
  options.load_balancing_policy = "pick_first";
  EXPECT_EQ(ServiceConfigJson(options), R"({"loadBalancingConfig": [{"pick_first": {}}]})");
}

}  // namespace
}  // namespace client_internal
}  // namespace actserve
