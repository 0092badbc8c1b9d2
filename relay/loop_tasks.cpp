// Closures run on a libuv loop, posted from other threads (see loop_tasks.h).

#include "relay/loop_tasks.h"

#include <utility>

namespace ss {

void LoopTasks::init(uv_loop_t* loop) {
  uv_async_init(loop, &async_, on_wake);
  async_.data = this;
  std::lock_guard<std::mutex> lock(mutex_);
  open_ = true;
}

void LoopTasks::post(std::function<void()> task) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!open_) return;
  queue_.push_back(std::move(task));
  uv_async_send(&async_);
}

void LoopTasks::run_queued() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    tasks.swap(queue_);
  }
  for (auto& t : tasks) t();
}

void LoopTasks::on_wake(uv_async_t* a) {
  static_cast<LoopTasks*>(a->data)->run_queued();
}

void LoopTasks::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!open_) return;
    open_ = false;
    queue_.clear();
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
}

}  // namespace ss
