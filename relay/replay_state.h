#pragma once
// The replay state file: the classic replay filter and the 2022 salt pool written to disk, so a
// flight captured before a restart is still refused after it (no other Shadowsocks
// implementation does this). Written every `replay_state_interval` seconds when something
// changed, and at exit; read at start. A missing, unreadable or corrupt file is logged and
// ignored, never fatal.
//
// Format, version 1 (little-endian):
//   magic "SSUVRPLY" | version u32 | sections... | BLAKE2b-256 of everything before it
//   section: type u32 (1 classic filter, 2 salt pool) | length u64 | payload
// The payloads are ReplayFilter::export_state and SaltPool::export_state. Neither holds a salt:
// the filter is Bloom bits under a random SipHash key and the pool keeps 128-bit keyed BLAKE2b
// digests, each with the key that made it (stored in the file, so the restarted process can
// answer "seen?" for a new salt). Knowing the file lets one test a salt one already has, never
// list one. The checksum catches truncation and bit flips (it is not a MAC: the file is as
// trusted as the directory it is in).

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace ss {

class ReplayFilter;
class SaltPool;

inline constexpr uint32_t kReplayStateVersion = 3;  // 2: page-blocked; 3: mixed in-block bits

// The file's bytes for the filter and/or the pool (either may be null).
std::vector<uint8_t> encode_replay_state(const ReplayFilter* filter, const SaltPool* pool);

// Loads `file` into the filter and the pool (either may be null: its section is then skipped;
// pool entries expired by `now` are dropped). Empty on success, else why the file was refused;
// nothing is loaded from a file that fails its checks.
std::string decode_replay_state(std::span<const uint8_t> file, ReplayFilter* filter, SaltPool* pool,
                                uint64_t now);

// Writes `bytes` to `path` atomically: a temporary file beside it (mode 0600), fsync, rename,
// fsync of the directory. Empty on success, else the reason.
std::string write_file_atomically(const std::string& path, std::span<const uint8_t> bytes);

// One process's state file: `dir`/`name`, created on first save (the directory too, mode 0700).
class ReplayStateFile {
 public:
  ReplayStateFile(std::string dir, std::string name, std::shared_ptr<ReplayFilter> filter,
                  std::shared_ptr<SaltPool> pool, std::function<uint64_t()> clock);
  const std::string& path() const { return path_; }
  // At start, before any connection: loads the file, logging what came of it.
  void load();
  // Writes the state if it changed since the last load or save (or always, with force). A
  // failure is logged (once until the reason changes or a save succeeds).
  void save(bool force = false);

 private:
  std::string dir_;
  std::string path_;
  std::shared_ptr<ReplayFilter> filter_;
  std::shared_ptr<SaltPool> pool_;
  std::function<uint64_t()> clock_;
  uint64_t saved_generation_ = 0;  // fresh filters: nothing to write yet
  std::string last_error_;
};

}  // namespace ss
