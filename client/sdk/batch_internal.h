// The SDK's access to the wire request that a Batch (actserve/batch.h) builds: the public
// header keeps it opaque so that no generated protobuf type is part of the public API,
// and the SDK's calls (client.cc), the batch itself (batch.cc) and in-project tools that
// send raw bytes (actctl bench) reach it here.
//
// Internal to the SDK (not installed).
#ifndef ACTSERVE_CLIENT_SDK_BATCH_INTERNAL_H_
#define ACTSERVE_CLIENT_SDK_BATCH_INTERNAL_H_

#include "actserve/batch.h"
#include "actserve/v1/activation.pb.h"

namespace actserve {

struct Batch::Request {
  v1::ComputeRequest proto;
};

namespace client_internal {

class BatchWire {
 public:
  // The ComputeRequest built so far by `batch`'s successful Adds; valid while the batch
  // lives and is not modified.
  static const v1::ComputeRequest& Request(const Batch& batch) { return batch.request_->proto; }
};

}  // namespace client_internal
}  // namespace actserve

#endif  // ACTSERVE_CLIENT_SDK_BATCH_INTERNAL_H_
