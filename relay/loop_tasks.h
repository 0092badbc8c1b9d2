#pragma once
// Runs functions on one loop's thread, posted from any thread: a uv_async_t and a locked queue.
// The main loop publishes a new runtime snapshot to each worker this way (a refresh of the server
// list, a reload): the worker's listeners take it for the connections they accept from then on,
// while live connections keep the one they hold.

#include <uv.h>

#include <functional>
#include <mutex>
#include <vector>

namespace ss {

class LoopTasks {
 public:
  using Task = std::function<void()>;

  LoopTasks() = default;
  LoopTasks(const LoopTasks&) = delete;
  LoopTasks& operator=(const LoopTasks&) = delete;

  // On the loop's thread (or before it runs).
  void init(uv_loop_t* loop);
  // From any thread: `task` runs on the loop soon, after the tasks posted before it. False (and
  // the task dropped) once close() has run.
  bool post(Task task);
  // On the loop's thread: no more tasks; the tasks not yet run are dropped. The handle's close
  // callback ends it; the object must live until the loop has ended. Idempotent.
  void close();

 private:
  static void on_async(uv_async_t* a);

  uv_async_t async_;
  std::mutex mutex_;
  std::vector<Task> queue_;
  bool open_ = false;
};

}  // namespace ss
