// The SDK as a user gets it: `cmake --install` this build tree into a fresh prefix, check
// that the installed headers are the public API only (the SDK's and the one public types
// header: nothing of the engine, the pool, the kernels or the generated code), build a
// separate project that does find_package(actserve), links actserve::client and uses the
// public types, and run that program against the real server.
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/subprocess.h"

namespace actserve {
namespace {

using ::actserve::integration::MakeWorkDir;
using ::actserve::integration::ProcessResult;
using ::actserve::integration::RunProcess;
using ::actserve::integration::ServerProcess;

constexpr char kConsumerCMakeLists[] = R"cmake(
cmake_minimum_required(VERSION 3.20)
project(actserve_consumer LANGUAGES CXX)
set(CMAKE_CXX_STANDARD 17)
find_package(actserve 0.1 CONFIG REQUIRED)
add_executable(consumer main.cc)
target_link_libraries(consumer PRIVATE actserve::client)
)cmake";

constexpr char kConsumerMain[] = R"source(
#include <cstdio>
#include <vector>

#include "actserve/batch.h"
#include "actserve/client.h"
#include "actserve/types.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const actserve::Client client(argv[1]);
  const std::vector<float> x = {-1, 0, 2};
  absl::StatusOr<actserve::TypedResult<float>> r = client.Compute(x, {3}, "relu");
  if (!r.ok()) {
    std::printf("%s\n", r.status().ToString().c_str());
    return 1;
  }
  for (float v : r->output) std::printf("%g ", v);
  for (float v : r->grad_input) std::printf("%g ", v);
  std::printf("\n");
  // The public types: a spec built from text, a dtype by name, a mode, a Batch of a view.
  absl::StatusOr<actserve::ActivationSpec> spec =
      actserve::ParseActivationSpec("leaky_relu(negative_slope=0.5)");
  actserve::DType dtype = actserve::DType::kUnspecified;
  if (!spec.ok() || !actserve::ParseDType("f64", &dtype)) return 1;
  const std::vector<double> y = {-2, 4};
  const int64_t shape[] = {2};
  actserve::Batch batch;
  batch.Add(actserve::MakeTensorView(y, shape), *spec, actserve::Mode::kForward);
  absl::StatusOr<std::vector<actserve::ItemOutput>> items = client.Compute(batch);
  if (!items.ok() || !(*items)[0].output.has_value()) return 1;
  std::printf("%s %s %s:", actserve::FormatActivationSpec(*spec).c_str(),
              std::string(actserve::DTypeName(dtype)).c_str(),
              std::string(actserve::ModeName(actserve::Mode::kForward)).c_str());
  for (double v : (*items)[0].output->ToDoubles()) std::printf(" %g", v);
  std::printf("\n");
  return 0;
}
)source";

void WriteFile(const std::string& path, const char* contents) { std::ofstream(path) << contents; }

TEST(InstallTest, FindPackageGivesAWorkingClient) {
  const std::string dir = MakeWorkDir();
  const std::string prefix = dir + "/prefix";
  const ProcessResult install =
      RunProcess({CMAKE_COMMAND, "--install", ACTSERVE_BUILD_DIR, "--prefix", prefix}, dir);
  ASSERT_EQ(install.exit_code, 0) << install.out << install.err;

  // The public API and nothing else: every installed header, and no library of the engine.
  std::set<std::string> headers;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(prefix + "/include")) {
    if (entry.is_regular_file()) {
      headers.insert(std::filesystem::relative(entry.path(), prefix + "/include").string());
    }
  }
  EXPECT_EQ(headers, (std::set<std::string>{"actserve/batch.h", "actserve/client.h",
                                            "actserve/tensor.h", "actserve/types.h"}));
  for (const auto& entry : std::filesystem::recursive_directory_iterator(prefix)) {
    EXPECT_EQ(entry.path().filename().string().find("actserve_core"), std::string::npos)
        << entry.path();
  }

  const std::string source = dir + "/consumer";
  ASSERT_EQ(RunProcess({"/bin/mkdir", "-p", source}, dir).exit_code, 0);
  WriteFile(source + "/CMakeLists.txt", kConsumerCMakeLists);
  WriteFile(source + "/main.cc", kConsumerMain);
  const ProcessResult configure =
      RunProcess({CMAKE_COMMAND, "-S", source, "-B", dir + "/build", "-G", CMAKE_GENERATOR,
                  "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_CXX_COMPILER=" CMAKE_CXX_COMPILER,
                  "-DCMAKE_PREFIX_PATH=" + prefix},
                 dir);
  ASSERT_EQ(configure.exit_code, 0) << configure.out << configure.err;
  const ProcessResult build = RunProcess({CMAKE_COMMAND, "--build", dir + "/build"}, dir);
  ASSERT_EQ(build.exit_code, 0) << build.out << build.err;

  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start(ACTSERVE_BINARY, dir);
  ASSERT_TRUE(server.ok()) << server.status();
  const ProcessResult run = RunProcess({dir + "/build/consumer", (*server)->target()}, dir);
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  // relu(-1, 0, 2) and its gradient; leaky_relu with slope 0.5 of (-2, 4) in float64.
  EXPECT_EQ(run.out, "0 0 2 0 0 1 \nleaky_relu(negative_slope=0.5) float64 forward: -1 4\n");
  EXPECT_EQ((*server)->Stop(), 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace actserve
