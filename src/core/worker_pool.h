// WorkerPool: a fixed set of threads that run queued jobs, first in, first out.
//
// The HTTP I/O threads must never block; work that may (a QMP or guest agent round trip,
// an outbound connection, password hashing, an fsync) is handed to a pool and answered
// from there. The queue is bounded so that a flood of slow requests is refused (the caller
// answers 503) instead of growing without limit.
//
// Thread-safe. Stop() (or the destructor) lets running jobs finish, destroys queued ones
// without running them, and joins the threads.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hearth {

class WorkerPool {
 public:
  WorkerPool(std::string name, size_t threads, size_t max_queue);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `job`. False (and `job` is dropped) if the queue is full or the pool stopped.
  bool Submit(std::function<void()> job);
  void Stop();
  // Jobs queued or running (for tests and metrics).
  size_t pending() const;
  // Whether Stop() has begun (Submit refuses from then on).
  bool stopping() const;

 private:
  void Loop();

  const std::string name_;
  const size_t max_queue_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // GUARDED_BY(mu_)
  size_t running_ = 0;                       // GUARDED_BY(mu_)
  bool stopping_ = false;                    // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;
};

}  // namespace hearth
