#include "tests/integration/test_certs.h"

#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/integration/subprocess.h"

namespace actserve {
namespace integration {
namespace {

constexpr char kOpenssl[] = "/usr/bin/openssl";

absl::Status Openssl(std::vector<std::string> args, const std::string& dir) {
  args.insert(args.begin(), kOpenssl);
  const ProcessResult result = RunProcess(args, dir);
  if (result.exit_code == 0) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("openssl ", args[1], " failed (exit ", result.exit_code, "): ", result.err));
}

}  // namespace

absl::Status MakeCa(const std::string& dir, const std::string& name) {
  return Openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                  "-nodes", "-days", "1", "-subj", "/CN=" + name, "-keyout",
                  dir + "/" + name + ".key", "-out", dir + "/" + name + ".crt"},
                 dir);
}

absl::Status MakeLeaf(const std::string& dir, const std::string& name, const std::string& ca,
                      const std::string& alt_names) {
  const std::string base = dir + "/" + name;
  std::ofstream(base + ".ext") << "subjectAltName=" << alt_names
                               << "\nextendedKeyUsage=serverAuth,clientAuth\n";
  absl::Status request =
      Openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
               "-subj", "/CN=" + name, "-keyout", base + ".key", "-out", base + ".csr"},
              dir);
  if (!request.ok()) return request;
  return Openssl({"x509", "-req", "-days", "1", "-in", base + ".csr", "-CA",
                  dir + "/" + ca + ".crt", "-CAkey", dir + "/" + ca + ".key", "-CAcreateserial",
                  "-extfile", base + ".ext", "-out", base + ".crt"},
                 dir);
}

}  // namespace integration
}  // namespace actserve
