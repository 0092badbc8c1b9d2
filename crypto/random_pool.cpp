// The per-thread random pool (see random_pool.h). Layout of the one page each thread maps: the
// count of bytes not yet handed out, then the bytes; consumption runs from the end of the unused
// part downwards, and each byte handed out is overwritten with zero. A page wiped on fork reads
// as "no bytes left".

#include "crypto/random_pool.h"

#include <sys/mman.h>
#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include "crypto/kdf.h"

namespace ss {
namespace {

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18  // Linux >= 4.14
#endif

constexpr size_t kPageBytes = 4096;

struct PoolPage {
  uint32_t left;  // bytes [0, left) of `bytes` are unused
  uint8_t bytes[kPageBytes - sizeof(uint32_t)];
};
static_assert(sizeof(PoolPage) == kPageBytes);

// The calling thread's page, or null if none could be set up (then the kernel serves each call).
class ThreadPool {
 public:
  ThreadPool() {
    void* p = mmap(nullptr, kPageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    if (madvise(p, kPageBytes, MADV_WIPEONFORK) != 0) {
      munmap(p, kPageBytes);
      return;
    }
    page_ = static_cast<PoolPage*>(p);  // zero-filled: left == 0
  }
  ~ThreadPool() {
    if (page_ == nullptr) return;
    secure_zero({page_->bytes, sizeof page_->bytes});
    munmap(page_, kPageBytes);
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  bool take(std::span<uint8_t> out) {
    if (page_ == nullptr || out.size() > sizeof page_->bytes) return false;
    if (page_->left < out.size() && !refill()) return false;
    const size_t at = page_->left - out.size();
    std::memcpy(out.data(), page_->bytes + at, out.size());
    secure_zero({page_->bytes + at, out.size()});
    page_->left = static_cast<uint32_t>(at);
    return true;
  }

 private:
  bool refill() {
    size_t got = 0;
    while (got < sizeof page_->bytes) {
      const ssize_t n = getrandom(page_->bytes + got, sizeof page_->bytes - got, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      got += static_cast<size_t>(n);
    }
    page_->left = static_cast<uint32_t>(sizeof page_->bytes);
    return true;
  }

  PoolPage* page_ = nullptr;
};

}  // namespace

void pooled_random_bytes(std::span<uint8_t> out) {
  thread_local ThreadPool pool;
  if (out.empty()) return;
  if (!pool.take(out)) random_bytes(out);
}

}  // namespace ss
