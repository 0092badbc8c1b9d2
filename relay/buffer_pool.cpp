// Per-thread block pool: blocks are taken for one read or one queued write and given back as
// soon as that I/O completes, so an idle connection holds none.

#include "relay/buffer_pool.h"

namespace ss {

BlockPool& BlockPool::local() {
  thread_local BlockPool pool;
  return pool;
}

BlockPool::~BlockPool() {
  while (free_ != nullptr) {
    Block* b = free_;
    free_ = b->next;
    delete b;
  }
}

Block* BlockPool::acquire() {
  Block* b = free_;
  if (b != nullptr) {
    free_ = b->next;
    --free_count_;
  } else {
    b = new Block;  // default-initialised: the data bytes are not zeroed
  }
  ++live_;
  b->next = nullptr;
  b->len = 0;
  b->off = 0;
  return b;
}

void BlockPool::release(Block* b) {
  if (b == nullptr) return;
  --live_;
  if (free_count_ >= kMaxFree) {
    delete b;
    return;
  }
  b->next = free_;
  free_ = b;
  ++free_count_;
}

}  // namespace ss
