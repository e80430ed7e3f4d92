#include "index/parallel.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace s3::index {

unsigned resolve_threads(unsigned requested) {
  if (requested != 0) return requested;
  unsigned hw = std::thread::hardware_concurrency();
  return std::clamp(hw, 1u, 8u);
}

namespace {
void run_tasks(size_t n_tasks, unsigned threads, const std::function<void(size_t)>& task) {
  if (n_tasks == 0) return;
  const size_t n_threads = std::min<size_t>(std::max(threads, 1u), n_tasks);
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&] {
    for (;;) {
      size_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= n_tasks) return;
      try {
        task(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        next.store(n_tasks, std::memory_order_relaxed);
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < n_threads; ++t)
    pool.emplace_back(worker);
  worker();
  for (auto& th : pool)
    th.join();
  if (error) std::rethrow_exception(error);
}
}  // namespace

void parallel_for_chunks(size_t n, unsigned threads,
                         const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  const size_t n_chunks = std::min<size_t>(n, static_cast<size_t>(std::max(threads, 1u)) * 8);
  const size_t per = (n + n_chunks - 1) / n_chunks;
  run_tasks((n + per - 1) / per, threads, [&](size_t c) {
    const size_t lo = c * per;
    fn(lo, std::min(n, lo + per));
  });
}

void parallel_for_each(size_t n, unsigned threads, const std::function<void(size_t)>& fn) {
  run_tasks(n, threads, fn);
}

}  // namespace s3::index
