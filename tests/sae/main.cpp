// GoogleTest main for the LibTorch tests of sae/: one intra-op thread unless S3ATTN_TEST_THREADS
// says otherwise. The tests use small tensors, where ATen's thread pool only adds overhead, and on
// a loaded machine its spinning threads made training steps ~100x slower (measured: 264 ms vs
// 3 ms per step with 2 threads on a 2-core machine running other builds).
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cstdlib>

int main(int argc, char** argv) {
  const char* env = std::getenv("S3ATTN_TEST_THREADS");
  at::set_num_threads(env ? std::max(1, std::atoi(env)) : 1);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
