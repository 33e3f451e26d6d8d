#include "client/actctl/npy.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace actserve {
namespace npy {
namespace {

constexpr absl::string_view kMagic = "\x93NUMPY";
// numpy aligns the data to 64 bytes (so that it can be memory-mapped).
constexpr size_t kAlignment = 64;

absl::Status Malformed(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("not a valid .npy file: ", what));
}

// The header is a Python dict literal, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// A tiny recursive-descent reader for exactly that grammar.
class HeaderReader {
 public:
  explicit HeaderReader(absl::string_view text) : text_(text) {}

  absl::Status Read(std::string* descr, bool* fortran_order, std::vector<int64_t>* shape) {
    bool have_descr = false, have_order = false, have_shape = false;
    if (!Consume('{')) return Malformed("header does not start with '{'");
    while (!Consume('}')) {
      std::string key;
      if (!ReadString(&key)) return Malformed("header: expected a quoted key");
      if (!Consume(':')) return Malformed(absl::StrCat("header: expected ':' after '", key, "'"));
      if (key == "descr") {
        if (!ReadString(descr)) return Malformed("header: 'descr' is not a string");
        have_descr = true;
      } else if (key == "fortran_order") {
        if (!ReadBool(fortran_order)) return Malformed("header: 'fortran_order' is not a bool");
        have_order = true;
      } else if (key == "shape") {
        if (!ReadTuple(shape)) return Malformed("header: 'shape' is not a tuple of integers");
        have_shape = true;
      } else {
        return Malformed(absl::StrCat("header: unexpected key '", key, "'"));
      }
      if (!Consume(',')) {
        if (!Consume('}')) return Malformed("header: expected ',' or '}'");
        break;
      }
    }
    if (!have_descr || !have_order || !have_shape) {
      return Malformed("header lacks one of 'descr', 'fortran_order', 'shape'");
    }
    return absl::OkStatus();
  }

 private:
  void SkipSpace() {
    while (pos_ < text_.size() && absl::ascii_isspace(static_cast<unsigned char>(text_[pos_]))) {
      ++pos_;
    }
  }
  bool Consume(char c) {
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool ReadString(std::string* out) {
    SkipSpace();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) return false;
    const char quote = text_[pos_++];
    const size_t end = text_.find(quote, pos_);
    if (end == absl::string_view::npos) return false;
    *out = std::string(text_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return true;
  }
  bool ReadBool(bool* out) {
    SkipSpace();
    for (auto [word, value] : {std::pair<absl::string_view, bool>{"True", true},
                               std::pair<absl::string_view, bool>{"False", false}}) {
      if (text_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        *out = value;
        return true;
      }
    }
    return false;
  }
  bool ReadTuple(std::vector<int64_t>* out) {
    out->clear();
    if (!Consume('(')) return false;
    while (!Consume(')')) {
      SkipSpace();
      const size_t start = pos_;
      while (pos_ < text_.size() && absl::ascii_isdigit(static_cast<unsigned char>(text_[pos_]))) {
        ++pos_;
      }
      // Python 2 era files may write long integers as "3L".
      const absl::string_view digits = text_.substr(start, pos_ - start);
      if (pos_ < text_.size() && text_[pos_] == 'L') ++pos_;
      int64_t dim;
      if (digits.empty() || !absl::SimpleAtoi(digits, &dim)) return false;
      out->push_back(dim);
      if (!Consume(',')) {
        if (!Consume(')')) return false;
        break;
      }
    }
    return true;
  }

  absl::string_view text_;
  size_t pos_ = 0;
};

// The dtype for a descr such as '<f4', or InvalidArgument explaining the refusal.
absl::StatusOr<DType> DTypeFromDescr(absl::string_view descr, const ReadOptions& options) {
  if (descr.size() >= 2 && descr[0] == '>') {
    return absl::InvalidArgumentError(absl::StrCat(
        "big-endian data ('", descr, "') is not supported; convert it with numpy: ", "a.astype('<",
        descr.substr(1), "')"));
  }
  if (descr == "<f4") return DType::kFloat32;
  if (descr == "<f8") return DType::kFloat64;
  if (descr == "<f2") return DType::kFloat16;
  if (descr == "<u2") {
    if (options.uint16_as_bfloat16) return DType::kBFloat16;
    return absl::InvalidArgumentError(
        "uint16 data ('<u2') is only read as bfloat16 bit patterns; ask for dtype bfloat16");
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unsupported dtype '", descr, "'; expected '<f4' (float32), '<f8' (float64), '<f2' ",
      "(float16) or '<u2' (bfloat16 bit patterns)"));
}

absl::string_view DescrOf(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "<f4";
    case DType::kFloat64:
      return "<f8";
    case DType::kFloat16:
      return "<f2";
    case DType::kBFloat16:
      return "<u2";
    case DType::kUnspecified:
      break;
  }
  return "<f4";
}

uint32_t ReadLittleEndian(absl::string_view bytes) {
  uint32_t value = 0;
  for (size_t i = bytes.size(); i-- > 0;) {
    value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  }
  return value;
}

std::string SystemError(absl::string_view action, const std::string& path) {
  return absl::StrCat("cannot ", action, " ", path, ": ", std::strerror(errno));
}

absl::Status FileError(absl::string_view action, const std::string& path) {
  const int error = errno;
  std::string message = SystemError(action, path);
  if (error == ENOENT) return absl::NotFoundError(message);
  if (error == EACCES || error == EPERM) return absl::PermissionDeniedError(message);
  return absl::UnknownError(message);
}

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

}  // namespace

absl::StatusOr<Tensor> Parse(absl::string_view bytes, const ReadOptions& options) {
  if (bytes.size() < 10 || bytes.substr(0, kMagic.size()) != kMagic) {
    return Malformed("it does not start with \"\\x93NUMPY\"");
  }
  const int major = static_cast<uint8_t>(bytes[6]);
  const int minor = static_cast<uint8_t>(bytes[7]);
  if (major < 1 || major > 3 || minor != 0) {
    return Malformed(
        absl::StrCat("format version ", major, ".", minor, " (supported: 1.0, 2.0, 3.0)"));
  }
  const size_t length_bytes = major == 1 ? 2 : 4;
  if (bytes.size() < 8 + length_bytes) return Malformed("truncated header");
  const size_t header_length = ReadLittleEndian(bytes.substr(8, length_bytes));
  const size_t data_offset = 8 + length_bytes + header_length;
  if (bytes.size() < data_offset) return Malformed("truncated header");

  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
  absl::Status header = HeaderReader(bytes.substr(8 + length_bytes, header_length))
                            .Read(&descr, &fortran_order, &shape);
  if (!header.ok()) return header;
  absl::StatusOr<DType> dtype = DTypeFromDescr(descr, options);
  if (!dtype.ok()) return dtype.status();
  if (fortran_order) {
    return absl::InvalidArgumentError(
        "Fortran-order (column-major) data is not supported; save a C-order array "
        "(numpy.ascontiguousarray)");
  }
  absl::StatusOr<int64_t> elements = NumElements(shape);
  if (!elements.ok()) return elements.status();
  const size_t data_bytes = static_cast<size_t>(*elements) * DTypeSize(*dtype);
  if (bytes.size() - data_offset < data_bytes) {
    return Malformed(absl::StrCat("shape ", ShapeToString(shape), " ", DTypeName(*dtype), " needs ",
                                  data_bytes, " bytes of data, the file has ",
                                  bytes.size() - data_offset));
  }
  return Tensor::FromBytes(*dtype, std::move(shape),
                           std::string(bytes.substr(data_offset, data_bytes)));
}

std::string Serialize(const Tensor& tensor) {
  std::string shape;
  for (int64_t dim : tensor.shape()) absl::StrAppend(&shape, dim, ", ");
  // Python writes a one-element tuple as "(5,)" and the empty one as "()".
  if (tensor.shape().size() > 1) shape.resize(shape.size() - 2);
  if (tensor.shape().size() == 1) shape.resize(shape.size() - 1);
  std::string header = absl::StrCat("{'descr': '", DescrOf(tensor.dtype()),
                                    "', 'fortran_order': False, 'shape': (", shape, "), }");
  size_t prefix = 10;  // magic, version, 2-byte length
  int major = 1;
  if (header.size() + 1 + kAlignment > 0xFFFF) {
    prefix = 12;
    major = 2;
  }
  // Pad with spaces and end with a newline so that the data starts 64-byte aligned.
  const size_t total = (prefix + header.size() + 1 + kAlignment - 1) / kAlignment * kAlignment;
  header.append(total - prefix - header.size() - 1, ' ');
  header.push_back('\n');

  std::string out(kMagic);
  out.push_back(static_cast<char>(major));
  out.push_back('\0');
  const size_t header_length = header.size();
  for (size_t i = 0; i < prefix - 8; ++i) {
    out.push_back(static_cast<char>((header_length >> (8 * i)) & 0xFF));
  }
  out += header;
  out += tensor.data();
  return out;
}

absl::StatusOr<Tensor> ReadFile(const std::string& path, const ReadOptions& options) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (file == nullptr) return FileError("open", path);
  std::string bytes;
  char buffer[1 << 16];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file.get())) > 0) bytes.append(buffer, n);
  if (std::ferror(file.get())) return FileError("read", path);
  absl::StatusOr<Tensor> tensor = Parse(bytes, options);
  if (!tensor.ok()) {
    return absl::Status(tensor.status().code(),
                        absl::StrCat(path, ": ", tensor.status().message()));
  }
  return tensor;
}

absl::Status WriteFile(const std::string& path, const Tensor& tensor) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "wb"));
  if (file == nullptr) return FileError("create", path);
  const std::string bytes = Serialize(tensor);
  if (std::fwrite(bytes.data(), 1, bytes.size(), file.get()) != bytes.size()) {
    return FileError("write", path);
  }
  if (std::fclose(file.release()) != 0) return FileError("write", path);
  return absl::OkStatus();
}

}  // namespace npy
}  // namespace actserve
