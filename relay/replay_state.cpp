// The replay state file (format in replay_state.h): encoding, checked decoding, the atomic write
// (temporary file, fsync, rename, fsync of the directory: the file is either the old one or the
// new one after a crash) and the load/save policy with its log lines.

#include "relay/replay_state.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "crypto/replay_filter.h"
#include "crypto/salt_pool.h"
#include "crypto/state_bytes.h"
#include "relay/log.h"

namespace ss {
namespace {

constexpr uint8_t kMagic[8] = {'S', 'S', 'U', 'V', 'R', 'P', 'L', 'Y'};
constexpr size_t kChecksum = 32;
constexpr uint32_t kSectionFilter = 1;
constexpr uint32_t kSectionPool = 2;

void checksum(std::span<const uint8_t> bytes, uint8_t out[kChecksum]) {
  crypto_generichash(out, kChecksum, bytes.data(), bytes.size(), nullptr, 0);
}

// Appends a section: its header, then what `fill` appends, with the length patched in.
template <typename Fill>
void section(std::vector<uint8_t>& out, uint32_t type, Fill fill) {
  put_u32(out, type);
  const size_t len_at = out.size();
  put_u64(out, 0);
  const size_t start = out.size();
  fill(out);
  const uint64_t len = out.size() - start;
  for (int i = 0; i < 8; ++i)
    out[len_at + static_cast<size_t>(i)] = static_cast<uint8_t>(len >> (8 * i));
}

std::string errno_text(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

}  // namespace

std::vector<uint8_t> encode_replay_state(const ReplayFilter* filter, const SaltPool* pool) {
  std::vector<uint8_t> out(kMagic, kMagic + sizeof kMagic);
  put_u32(out, kReplayStateVersion);
  if (filter) section(out, kSectionFilter, [filter](auto& o) { filter->export_state(o); });
  if (pool) section(out, kSectionPool, [pool](auto& o) { pool->export_state(o); });
  uint8_t sum[kChecksum];
  checksum(out, sum);
  put_bytes(out, sum);
  return out;
}

std::string decode_replay_state(std::span<const uint8_t> file, ReplayFilter* filter, SaltPool* pool,
                                uint64_t now) {
  if (file.size() < sizeof kMagic + 4 + kChecksum) return "too short to be a replay state file";
  if (std::memcmp(file.data(), kMagic, sizeof kMagic) != 0) return "not a replay state file";
  ByteReader header(file.subspan(sizeof kMagic, 4));
  const uint32_t version = header.u32();
  if (version != kReplayStateVersion) {
    return "version " + std::to_string(version) + ", this program reads version " +
           std::to_string(kReplayStateVersion);
  }
  const auto body = file.first(file.size() - kChecksum);
  uint8_t sum[kChecksum];
  checksum(body, sum);
  if (sodium_memcmp(sum, file.data() + body.size(), kChecksum) != 0) {
    return "checksum mismatch (truncated or damaged)";
  }
  // The framing first, so nothing is loaded from a file whose sections do not add up.
  std::span<const uint8_t> filter_bytes, pool_bytes;
  bool have_filter = false, have_pool = false;
  ByteReader r(body.subspan(sizeof kMagic + 4));
  while (r.ok() && r.left() > 0) {
    const uint32_t type = r.u32();
    const uint64_t len = r.u64();
    if (!r.ok() || len > r.left()) return "malformed section";
    const auto payload = r.bytes(static_cast<size_t>(len));
    if (type == kSectionFilter && !have_filter) {
      filter_bytes = payload;
      have_filter = true;
    } else if (type == kSectionPool && !have_pool) {
      pool_bytes = payload;
      have_pool = true;
    } else {
      return "unknown or repeated section " + std::to_string(type);
    }
  }
  if (!r.ok()) return "malformed section";
  std::string why;
  if (have_filter && filter && !filter->import_state(filter_bytes, &why)) return why;
  if (have_pool && pool && !pool->import_state(pool_bytes, now, &why)) return why;
  return {};
}

std::string write_file_atomically(const std::string& path, std::span<const uint8_t> bytes) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return errno_text(("cannot create " + tmp).c_str());
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string err = errno_text(("cannot write " + tmp).c_str());
      ::close(fd);
      ::unlink(tmp.c_str());
      return err;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    std::string err = errno_text(("cannot fsync " + tmp).c_str());
    ::close(fd);
    ::unlink(tmp.c_str());
    return err;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string err = errno_text(("cannot rename " + tmp).c_str());
    ::unlink(tmp.c_str());
    return err;
  }
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);  // the rename is durable; a failure here loses nothing already written
    ::close(dfd);
  }
  return {};
}

ReplayStateFile::ReplayStateFile(std::string dir, std::string name,
                                 std::shared_ptr<ReplayFilter> filter,
                                 std::shared_ptr<SaltPool> pool, std::function<uint64_t()> clock)
    : dir_(std::move(dir)),
      filter_(std::move(filter)),
      pool_(std::move(pool)),
      clock_(std::move(clock)) {
  path_ = dir_.empty() || dir_.back() == '/' ? dir_ + name : dir_ + "/" + name;
}

void ReplayStateFile::load() {
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      LOG_NOTICE("replay state: %s does not exist yet: starting with empty replay filters",
                 path_.c_str());
    } else {
      LOG_WARN("replay state: cannot read %s: %s: ignored, starting with empty replay filters",
               path_.c_str(), std::strerror(errno));
    }
    return;
  }
  std::vector<uint8_t> bytes;
  struct stat st {};
  std::string err;
  if (::fstat(fd, &st) != 0) {
    err = std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    err = "not a regular file";
  } else {
    bytes.resize(static_cast<size_t>(st.st_size));
    size_t got = 0;
    while (got < bytes.size()) {
      const ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    bytes.resize(got);
  }
  ::close(fd);
  if (err.empty()) err = decode_replay_state(bytes, filter_.get(), pool_.get(), clock_());
  if (!err.empty()) {
    LOG_WARN("replay state: %s is unusable (%s): ignored, starting with empty replay filters",
             path_.c_str(), err.c_str());
    return;
  }
  saved_generation_ = (filter_ ? filter_->generation() : 0) + (pool_ ? pool_->generation() : 0);
  LOG_NOTICE("replay state: loaded %s", path_.c_str());
}

void ReplayStateFile::save(bool force) {
  if (pool_) pool_->purge(clock_());
  const uint64_t generation =
      (filter_ ? filter_->generation() : 0) + (pool_ ? pool_->generation() : 0);
  if (!force && generation == saved_generation_) return;
  std::string err;
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) {
    err = errno_text(("cannot create the directory " + dir_).c_str());
  } else {
    err = write_file_atomically(path_, encode_replay_state(filter_.get(), pool_.get()));
  }
  if (!err.empty()) {
    if (err != last_error_) LOG_WARN("replay state: not saved: %s", err.c_str());
    last_error_ = err;
    return;
  }
  last_error_.clear();
  saved_generation_ = generation;
  LOG_DEBUG("replay state: saved %s", path_.c_str());
}

}  // namespace ss
