// A main() for builds without libFuzzer (GCC, the sanitizer preset): runs a fuzz target's
// LLVMFuzzerTestOneInput once on every file named on the command line, or in a directory
// named there, so that ctest replays the seed corpus as a regression test. Exit status 0
// when every input ran (a bug aborts), 1 when an argument cannot be read.
#include <dirent.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

bool RunFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return false;
  const std::string bytes((std::istreambuf_iterator<char>(file)),
                          std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int inputs = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string path = argv[i];
    struct stat info;
    if (::stat(path.c_str(), &info) != 0) {
      std::fprintf(stderr, "cannot read %s\n", path.c_str());
      return 1;
    }
    if (!S_ISDIR(info.st_mode)) {
      if (!RunFile(path)) return 1;
      ++inputs;
      continue;
    }
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) return 1;
    while (const dirent* entry = ::readdir(dir)) {
      const std::string name = entry->d_name;
      if (name == "." || name == "..") continue;
      if (!RunFile(path + "/" + name)) {
        ::closedir(dir);
        return 1;
      }
      ++inputs;
    }
    ::closedir(dir);
  }
  std::printf("replayed %d inputs\n", inputs);
  return inputs > 0 ? 0 : 1;
}
