#pragma once
// Reading the files a configuration names (-c, the users file): regular files only.

#include <cstddef>
#include <string>

namespace ss {

// Reads the whole of `path` into `out`. Only a regular file is read: the file is opened with
// O_NONBLOCK and checked with fstat on that descriptor (no stat-then-open race), so a FIFO
// without a writer, a socket or a device is refused at once instead of blocking or reading
// forever. Returns "" on success, else the reason (e.g. "not a regular file (a FIFO)", "larger
// than 1048576 bytes", strerror's text), without the path.
std::string read_regular_file(const std::string& path, size_t max_size, std::string& out);

}  // namespace ss
