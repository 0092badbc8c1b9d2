// Regular-file reading for configuration inputs: open(O_NONBLOCK) + fstat on the same
// descriptor, so that a FIFO, a socket or a device is refused before any blocking read.

#include "relay/read_file.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ss {
namespace {

const char* kind_of(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISDIR(mode)) return "a directory";
  return "not a plain file";
}

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::string read_regular_file(const std::string& path, size_t max_size, std::string& out) {
  out.clear();
  Fd f{::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)};
  if (f.fd < 0) {
    const int err = errno;
    // A Unix socket cannot be opened at all (ENXIO): say what it is rather than "no such device".
    struct stat st;
    if (err == ENXIO && ::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
      return std::string("not a regular file (") + kind_of(st.st_mode) + ")";
    }
    return std::strerror(err);
  }
  struct stat st;
  if (::fstat(f.fd, &st) != 0) return std::strerror(errno);
  if (!S_ISREG(st.st_mode)) return std::string("not a regular file (") + kind_of(st.st_mode) + ")";
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(f.fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::strerror(errno);
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_size) {
      // The file may hold passwords: leave no copy behind.
      sodium_memzero(out.data(), out.size());
      sodium_memzero(buf, sizeof buf);
      out.clear();
      return "larger than " + std::to_string(max_size) + " bytes";
    }
    out.append(buf, static_cast<size_t>(n));
  }
  sodium_memzero(buf, sizeof buf);
  return "";
}

}  // namespace ss
