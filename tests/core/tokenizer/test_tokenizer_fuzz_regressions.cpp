// What tests/fuzz/fuzz_tokenizer found in the tokenizer.json loader (docs/fuzzing.md): each input
// must be refused with one s3::Error naming the file, quickly and without a huge allocation.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "core/base/error.h"
#include "core/tokenizer/tokenizer.h"

namespace {

using nlohmann::json;

json small_byte_level(int64_t big_id) {
  json vocab = json::object();
  for (int b = 0x21; b <= 0x7E; ++b)
    vocab[std::string(1, static_cast<char>(b))] = b - 0x21;
  vocab["U"] = big_id;
  return {{"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}}};
}

// One vocabulary id of 666,666,652 among 94 made the loader size its id tables by it: a 21 GB
// allocation (out of memory under the fuzzer's 2 GB limit; bad_alloc or the OOM killer outside).
TEST(TokenizerFuzzRegressions, SparseIdsAreRefused) {
  for (int64_t id : {int64_t{666666652}, int64_t{2147483647}, int64_t{100000}}) {
    try {
      s3::Tokenizer::from_json(small_byte_level(id).dump(), "sparse.json");
      FAIL() << "id " << id << " accepted";
    } catch (const s3::Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("sparse.json"), std::string::npos) << what;
      EXPECT_NE(what.find("nearly contiguous"), std::string::npos) << what;
    }
  }
  // Small gaps stay accepted (ids that decode() skips).
  EXPECT_EQ(s3::Tokenizer::from_json(small_byte_level(150).dump()).vocab_size(), 151);
}

}  // namespace
