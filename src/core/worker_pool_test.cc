#include "core/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

namespace hearth {
namespace {

TEST(WorkerPoolTest, RunsJobsOnItsThreads) {
  WorkerPool pool("test", 2, 16);
  std::atomic<int> done{0};
  std::promise<void> all;
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(pool.Submit([&] {
      if (++done == 10) all.set_value();
    }));
  all.get_future().wait();
  EXPECT_EQ(done, 10);
}

TEST(WorkerPoolTest, RefusesWhenTheQueueIsFull) {
  WorkerPool pool("test", 1, 2);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::promise<void> started;
  ASSERT_TRUE(pool.Submit([&, gate] {
    started.set_value();
    gate.wait();
  }));
  started.get_future().wait();  // the one thread is busy now
  EXPECT_TRUE(pool.Submit([] {}));
  EXPECT_TRUE(pool.Submit([] {}));
  EXPECT_FALSE(pool.Submit([] {}));  // queue holds 2
  release.set_value();
}

TEST(WorkerPoolTest, StopDropsQueuedJobs) {
  auto pool = std::make_unique<WorkerPool>("test", 1, 8);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::promise<void> started;
  ASSERT_TRUE(pool->Submit([&, gate] {
    started.set_value();
    gate.wait();
  }));
  started.get_future().wait();
  std::atomic<bool> ran{false};
  auto flag = std::make_shared<int>(0);
  std::weak_ptr<int> watch = flag;
  ASSERT_TRUE(pool->Submit([flag, &ran] { ran = true; }));
  flag.reset();
  // The busy job is let go only once Stop() has begun, so the queued job could only run if
  // Stop() failed to drop it.
  std::thread releaser([&] {
    while (!pool->stopping()) std::this_thread::yield();
    release.set_value();
  });
  pool->Stop();
  releaser.join();
  EXPECT_FALSE(ran);
  EXPECT_TRUE(watch.expired());  // the queued job was destroyed, not leaked
  EXPECT_FALSE(pool->Submit([] {}));
}

}  // namespace
}  // namespace hearth
