#pragma once
// A temporary directory for a test, removed with everything in it on destruction.

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace ss::test {

class TempDir {
 public:
  // `base`: where to make it; by default the system's temporary directory (TMPDIR). A test that
  // binds Unix sockets in it passes "/tmp", since their paths must fit in sun_path.
  explicit TempDir(const std::string& prefix,
                   const std::filesystem::path& base = std::filesystem::temp_directory_path()) {
    // mkdtemp replaces the X's in place with the name it made.
    std::string made = (base / (prefix + ".XXXXXX")).string();
    if (mkdtemp(made.data()) == nullptr) throw std::runtime_error("mkdtemp " + made + " failed");
    path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace ss::test
