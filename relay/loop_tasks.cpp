// LoopTasks (see loop_tasks.h): post() queues under the lock and wakes the loop; the async
// callback swaps the queue out and runs it without the lock.

#include "relay/loop_tasks.h"

#include <utility>

namespace ss {

void LoopTasks::init(uv_loop_t* loop) {
  uv_async_init(loop, &async_, on_async);
  async_.data = this;
  std::lock_guard<std::mutex> lock(mutex_);
  open_ = true;
}

bool LoopTasks::post(Task task) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!open_) return false;
  queue_.push_back(std::move(task));
  uv_async_send(&async_);  // under the lock: close() cannot have closed the handle meanwhile
  return true;
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

void LoopTasks::on_async(uv_async_t* a) {
  auto* self = static_cast<LoopTasks*>(a->data);
  std::vector<Task> tasks;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    tasks.swap(self->queue_);
  }
  for (Task& t : tasks) t();
}

}  // namespace ss
