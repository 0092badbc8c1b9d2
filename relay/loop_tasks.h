#pragma once
// Closures posted from any thread to run on one libuv loop (a worker's), in the order posted:
// how the main loop hands a worker a new snapshot or new listeners without a lock on the data
// path (the queue's lock is taken only by a post and by the loop's wake-up).

#include <uv.h>

#include <functional>
#include <mutex>
#include <vector>

namespace ss {

class LoopTasks {
 public:
  LoopTasks() = default;
  LoopTasks(const LoopTasks&) = delete;
  LoopTasks& operator=(const LoopTasks&) = delete;

  // On the loop's thread (or before it runs). Matched by close().
  void init(uv_loop_t* loop);
  // From any thread: `task` runs on the loop at its next wake-up. Dropped once closed.
  void post(std::function<void()> task);
  // On the loop's thread: drops what is still queued and closes the handle; later posts are
  // dropped too.
  void close();

 private:
  static void on_wake(uv_async_t* a);
  void run_queued();

  uv_async_t async_;
  std::mutex mutex_;
  std::vector<std::function<void()>> queue_;
  bool open_ = false;  // under mutex_
};

}  // namespace ss
