// Reading and writing NumPy's .npy files (format versions 1.0, 2.0 and 3.0), for the
// dtypes actserve computes.
//
// Supported: little-endian '<f4' (float32), '<f8' (float64), '<f2' (float16) and '<u2',
// which NumPy has no bfloat16 for and which actctl reads as bfloat16 bit patterns when
// asked to; C (row-major) order. Fortran order, big-endian data and other dtypes are
// rejected with a message saying which. Written files use version 1.0 (2.0 when the
// header needs more than 64 KiB) and are read back by numpy.load.
//
//   absl::StatusOr<actserve::Tensor> x = actserve::npy::ReadFile("x.npy", {});
//   absl::Status written = actserve::npy::WriteFile("y.npy", *x);
#ifndef ACTSERVE_CLIENT_ACTCTL_NPY_H_
#define ACTSERVE_CLIENT_ACTCTL_NPY_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "actserve/tensor.h"

namespace actserve {
namespace npy {

struct ReadOptions {
  // Read '<u2' (uint16) data as bfloat16 bit patterns. Without it a '<u2' file is
  // InvalidArgument, because uint16 is not a type actserve computes. Default: false.
  bool uint16_as_bfloat16 = false;
};

// Parses the bytes of a .npy file. InvalidArgument naming the problem for: a bad magic
// string or version, a truncated file, a malformed header, an unsupported dtype,
// big-endian data, fortran_order True, or a data size that disagrees with the shape.
// Bytes after the data are ignored. Thread-safe.
absl::StatusOr<Tensor> Parse(absl::string_view bytes, const ReadOptions& options);

// The bytes of a .npy file holding `tensor`; bfloat16 is written as '<u2'.
std::string Serialize(const Tensor& tensor);

// Parse and Serialize on files. NotFound / PermissionDenied / Unknown when the file cannot
// be opened, read or written, with the path and the system's reason; Parse's errors are
// prefixed with the path.
absl::StatusOr<Tensor> ReadFile(const std::string& path, const ReadOptions& options);
absl::Status WriteFile(const std::string& path, const Tensor& tensor);

}  // namespace npy
}  // namespace actserve

#endif  // ACTSERVE_CLIENT_ACTCTL_NPY_H_
