// core/base/error_text.h on the messages LibTorch really prints: a device OOM as the allocator
// throws it and as the TorchScript interpreter re-throws it (with the scripted source listing).
#include "core/base/error_text.h"

#include <gtest/gtest.h>

namespace s3 {
namespace {

constexpr const char* kInterpreterOom =
    "The following operation failed in the TorchScript interpreter.\n"
    "Traceback of TorchScript, serialized code (most recent call last):\n"
    "  File \"code/__torch__/s3export/modeling.py\", line 80, in new_cache\n"
    "    _22 = torch.zeros(shape, dtype=ops.prim.dtype(weight), layout=None, "
    "device=ops.prim.device(weight))\n"
    "RuntimeError: CUDA out of memory. Tried to allocate 28.00 MiB. GPU 0 has a total capacity of "
    "79.18 GiB";

TEST(ErrorText, FirstLine) {
  EXPECT_EQ(first_line(kInterpreterOom),
            "The following operation failed in the TorchScript interpreter.");
  EXPECT_EQ(first_line("one line"), "one line");
  EXPECT_EQ(first_line(""), "");
}

TEST(ErrorText, OutOfMemory) {
  EXPECT_TRUE(is_out_of_memory(kInterpreterOom));
  EXPECT_TRUE(is_out_of_memory("CUDA out of memory. Tried to allocate 2.00 GiB"));
  EXPECT_FALSE(
      is_out_of_memory("PytorchStreamReader failed locating file constants.pkl: file not found"));
}

}  // namespace
}  // namespace s3
