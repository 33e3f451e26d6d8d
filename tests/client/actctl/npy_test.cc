// .npy reading and writing: round trips, hand-built headers, refusals, and numpy itself
// (through /usr/bin/python3) as the independent reader and writer.
#include "client/actctl/npy.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace actserve {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// This process's own directory for files, removed when the tests end.
const std::string& TempDirectory() {
  static const std::string* const dir = [] {
    auto* path = new std::string(absl::StrCat(::testing::TempDir(), "/client_npy_test_", getpid()));
    std::filesystem::create_directories(*path);
    return path;
  }();
  return *dir;
}

class RemoveTempDirectory : public ::testing::Environment {
 public:
  void TearDown() override { std::filesystem::remove_all(TempDirectory()); }
};
const ::testing::Environment* const kRemoveTempDirectory =
    ::testing::AddGlobalTestEnvironment(new RemoveTempDirectory);

std::string TempPath(const std::string& name) { return absl::StrCat(TempDirectory(), "/", name); }

// Runs python code with numpy; returns its exit status.
int RunPython(const std::string& code) {
  const std::string command = absl::StrCat("/usr/bin/python3 -c '", code, "'");
  return std::system(command.c_str());
}

bool HaveNumpy() { return RunPython("import numpy") == 0; }

// A .npy file with a hand-written header (version 1.0), padded as numpy pads.
std::string NpyWithHeader(const std::string& dict, const std::string& data) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(header.size() & 0xFF));
  out.push_back(static_cast<char>(header.size() >> 8));
  return out + header + data;
}

TEST(NpyTest, RoundTripsEveryDtype) {
  const npy::ReadOptions bfloat16{/*uint16_as_bfloat16=*/true};
  for (DType dtype : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16}) {
    for (const std::vector<int64_t>& shape :
         {std::vector<int64_t>{}, {0}, {5}, {2, 3}, {2, 1, 2}}) {
      std::vector<double> values;
      int64_t count = 1;
      for (int64_t d : shape) count *= d;
      for (int64_t i = 0; i < count; ++i) values.push_back(0.5 * static_cast<double>(i) - 1);
      absl::StatusOr<Tensor> tensor = Tensor::FromDoubles(dtype, shape, values);
      ASSERT_TRUE(tensor.ok()) << tensor.status();
      const std::string bytes = npy::Serialize(*tensor);
      EXPECT_EQ(bytes.size() % 64, tensor->data().size() % 64) << "data must be 64-aligned";
      absl::StatusOr<Tensor> back = npy::Parse(bytes, bfloat16);
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_EQ(*back, *tensor) << DTypeName(dtype) << " " << ShapeToString(shape);
    }
  }
}

TEST(NpyTest, WritesNumpysHeader) {
  absl::StatusOr<Tensor> tensor = Tensor::FromDoubles(DType::kFloat32, {3}, {1, 2, 3});
  ASSERT_TRUE(tensor.ok());
  const std::string bytes = npy::Serialize(*tensor);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  // numpy pads the header so that the data starts at a multiple of 64: here 128.
  EXPECT_EQ(bytes.size(), 128u + 12u);
  EXPECT_THAT(bytes.substr(10, 118),
              HasSubstr("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"));
  EXPECT_EQ(bytes[127], '\n');
}

TEST(NpyTest, ReadsHandWrittenHeaders) {
  const float values[] = {1.5f, -2.0f};
  const std::string data(reinterpret_cast<const char*>(values), sizeof(values));
  // Keys in another order, double quotes, no trailing comma, extra spaces.
  absl::StatusOr<Tensor> t = npy::Parse(
      NpyWithHeader("{\"shape\": (1, 2), \"fortran_order\": False, \"descr\": \"<f4\"}", data), {});
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(t->shape(), ElementsAre(1, 2));
  EXPECT_THAT(t->Values<float>(), ElementsAre(1.5f, -2.0f));
}

TEST(NpyTest, RejectsWhatItCannotRead) {
  const std::string eight(8, '\0');
  struct Case {
    std::string bytes;
    std::string message;
  };
  const Case cases[] = {
      {"not a numpy file", "\\x93NUMPY"},
      {NpyWithHeader("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", eight),
       "big-endian"},
      {NpyWithHeader("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", eight),
       "Fortran-order"},
      {NpyWithHeader("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", eight),
       "unsupported dtype '<i4'"},
      {NpyWithHeader("{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }", eight),
       "bfloat16"},
      {NpyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", eight),
       "needs 12 bytes of data, the file has 8"},
      {NpyWithHeader("{'descr': '<f4', 'shape': (2,), }", eight), "lacks"},
      {NpyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2,x), }", eight),
       "'shape'"},
      {std::string("\x93NUMPY\x01\x00\xFF\x00{", 11), "truncated header"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Tensor> t = npy::Parse(c.bytes, {});
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(t.status().message(), HasSubstr(c.message));
  }
}

TEST(NpyTest, FileErrorsNameThePath) {
  const std::string missing = TempPath("missing.npy");
  absl::StatusOr<Tensor> t = npy::ReadFile(missing, {});
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(t.status().message(), HasSubstr(missing));
}

TEST(NpyTest, ReadsFilesWrittenByNumpy) {
  if (!HaveNumpy()) GTEST_SKIP() << "/usr/bin/python3 has no numpy";
  const std::string f4 = TempPath("np_f4.npy"), f8 = TempPath("np_f8.npy"),
                    f2 = TempPath("np_f2.npy"), u2 = TempPath("np_u2.npy"),
                    v2 = TempPath("np_v2.npy"), scalar = TempPath("np_scalar.npy"),
                    fortran = TempPath("np_fortran.npy"), big = TempPath("np_big.npy");
  ASSERT_EQ(RunPython(absl::StrCat(
                "import numpy as np; a = np.arange(6).reshape(2, 3) - 2.5; ", "np.save(\"", f4,
                "\", a.astype(np.float32)); ", "np.save(\"", f8, "\", a); ", "np.save(\"", f2,
                "\", a.astype(np.float16)); ", "np.save(\"", u2,
                "\", np.array([0x3F80, 0xC000], dtype=np.uint16)); ", "np.save(\"", scalar,
                "\", np.float64(7.25)); ", "np.save(\"", fortran, "\", np.asfortranarray(a)); ",
                "np.save(\"", big, "\", a.astype(\">f4\")); ", "f = open(\"", v2, "\", \"wb\"); ",
                "np.lib.format.write_array(f, a.astype(np.float32), version=(2, 0)); f.close()")),
            0);
  const std::vector<double> expected = {-2.5, -1.5, -0.5, 0.5, 1.5, 2.5};
  for (const auto& [path, dtype] : {std::pair<std::string, DType>{f4, DType::kFloat32},
                                    {f8, DType::kFloat64},
                                    {f2, DType::kFloat16},
                                    {v2, DType::kFloat32}}) {
    absl::StatusOr<Tensor> t = npy::ReadFile(path, {});
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(t->dtype(), dtype) << path;
    EXPECT_THAT(t->shape(), ElementsAre(2, 3)) << path;
    EXPECT_EQ(t->ToDoubles(), expected) << path;
  }
  absl::StatusOr<Tensor> bf16 = npy::ReadFile(u2, {/*uint16_as_bfloat16=*/true});
  ASSERT_TRUE(bf16.ok()) << bf16.status();
  EXPECT_EQ(bf16->dtype(), DType::kBFloat16);
  EXPECT_THAT(bf16->ToDoubles(), ElementsAre(1.0, -2.0));
  absl::StatusOr<Tensor> s = npy::ReadFile(scalar, {});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->shape().empty());
  EXPECT_THAT(s->ToDoubles(), ElementsAre(7.25));
  EXPECT_THAT(npy::ReadFile(fortran, {}).status().message(), HasSubstr("Fortran-order"));
  EXPECT_THAT(npy::ReadFile(big, {}).status().message(), HasSubstr("big-endian"));
}

TEST(NpyTest, NumpyReadsFilesWeWrite) {
  if (!HaveNumpy()) GTEST_SKIP() << "/usr/bin/python3 has no numpy";
  const std::vector<double> values = {-2.5, -1.5, -0.5, 0.5, 1.5, 2.5};
  struct Case {
    DType dtype;
    std::string numpy_dtype;
  };
  for (const Case& c : {Case{DType::kFloat32, "float32"}, Case{DType::kFloat64, "float64"},
                        Case{DType::kFloat16, "float16"}, Case{DType::kBFloat16, "uint16"}}) {
    absl::StatusOr<Tensor> t = Tensor::FromDoubles(c.dtype, {3, 2}, values);
    ASSERT_TRUE(t.ok());
    const std::string path = TempPath(absl::StrCat("ours_", DTypeName(c.dtype), ".npy"));
    ASSERT_TRUE(npy::WriteFile(path, *t).ok());
    // bfloat16 bits are the top half of float32's: widen them to compare values.
    const std::string as_values =
        c.dtype == DType::kBFloat16
            ? "(a.astype(np.uint32) << 16).view(np.float32).astype(np.float64)"
            : "a.astype(np.float64)";
    EXPECT_EQ(RunPython(absl::StrCat(
                  "import numpy as np; a = np.load(\"", path, "\"); ", "assert a.dtype == np.",
                  c.numpy_dtype, ", a.dtype; ", "assert a.shape == (3, 2), a.shape; ",
                  "assert a.flags.c_contiguous; v = ", as_values, "; ",
                  "assert (v.ravel() == [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]).all(), v")),
              0)
        << DTypeName(c.dtype);
  }
}

}  // namespace
}  // namespace actserve
