// IndexShard (core/pipeline/index_shard.h): for any input and world size, every chunk of every
// document is scanned by exactly one rank, each rank's chunks follow the previous rank's in input
// order, every rank tokenizes the documents it needs, the ranges recorded the way the scan records
// them tile the input (what merge_parts checks), and one long document is shared evenly.
// LaunchEnvironment (core/pipeline/launch.h) reads torchrun's and Slurm's variables.
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/pipeline/index_shard.h"
#include "core/pipeline/launch.h"

namespace s3 {
namespace {

struct Input {
  std::vector<Document> docs;
  std::vector<std::vector<index::TokenOffset>> offsets;  // per document, as a tokenizer gives
};

// Tokens of 1-8 bytes; now and then a token without text first (BOS) or last.
std::vector<index::TokenOffset> tokenize(const std::string& text, std::mt19937_64& rng) {
  std::vector<index::TokenOffset> out;
  if (rng() % 4 == 0) out.push_back({0, 0});
  for (uint32_t b = 0; b < text.size();) {
    const uint32_t e = std::min<uint32_t>(static_cast<uint32_t>(text.size()),
                                          b + 1 + static_cast<uint32_t>(rng() % 8));
    out.push_back({b, e});
    b = e;
  }
  if (rng() % 4 == 0) {
    const auto n = static_cast<uint32_t>(text.size());
    out.push_back({n, n});
  }
  return out;
}

Input random_input(uint64_t seed, int n_docs) {
  std::mt19937_64 rng(seed);
  Input in;
  for (int d = 0; d < n_docs; ++d) {
    const size_t bytes = rng() % 5 == 0 ? 20000 + rng() % 20000 : 1 + rng() % 600;
    in.docs.push_back(
        {"doc" + std::to_string(d), std::string(bytes, 'a' + static_cast<char>(d % 26))});
    in.offsets.push_back(tokenize(in.docs.back().text, rng));
  }
  return in;
}

struct Share {
  size_t doc = 0;
  int64_t first = 0, end = 0;
};

// What one rank scans, and its record's range, as Scanner::scan derives them.
struct RankScan {
  std::vector<Share> shares;
  index::PartPosition begin, end;
};

RankScan scan_of(const IndexShard& shard, const Input& in, int64_t chunk) {
  RankScan r;
  for (size_t d = shard.first_document(); d < shard.end_document(); ++d) {
    const IndexShard::Chunks c = shard.chunks(d, in.offsets[d], chunk);
    if (c.first < c.end) r.shares.push_back({d, c.first, c.end});
  }
  auto token = [&](size_t d, int64_t c) {
    return static_cast<uint32_t>(
        std::min<int64_t>(c * chunk, static_cast<int64_t>(in.offsets[d].size())));
  };
  if (r.shares.empty()) {
    const size_t d = shard.first_document();
    const IndexShard::Chunks c = shard.chunks(d, in.offsets[d], chunk);
    EXPECT_EQ(c.first, c.end);
    r.begin = r.end = {d, token(d, c.first)};
  } else {
    r.begin = {r.shares.front().doc, token(r.shares.front().doc, r.shares.front().first)};
    r.end = {r.shares.back().doc, token(r.shares.back().doc, r.shares.back().end)};
  }
  return r;
}

void check_split(const Input& in, int world, int64_t chunk) {
  SCOPED_TRACE("world " + std::to_string(world) + ", chunk " + std::to_string(chunk));
  // Every chunk of the input, in input order, and the chunks the ranks scan, in rank order.
  std::vector<std::pair<size_t, int64_t>> all, scanned;
  for (size_t d = 0; d < in.docs.size(); ++d) {
    for (int64_t c = 0; c * chunk < static_cast<int64_t>(in.offsets[d].size()); ++c)
      all.emplace_back(d, c);
  }
  index::PartPosition at{0, 0};
  auto normalized = [&](index::PartPosition p) {
    return p.token == in.offsets[p.doc].size() ? index::PartPosition{p.doc + 1, 0} : p;
  };
  for (int rank = 0; rank < world; ++rank) {
    const IndexShard shard(in.docs, rank, world);
    ASSERT_LT(shard.first_document(), shard.end_document());
    const RankScan r = scan_of(shard, in, chunk);
    for (const Share& s : r.shares) {
      for (int64_t c = s.first; c < s.end; ++c)
        scanned.emplace_back(s.doc, c);
    }
    // The ranges the parts record tile the input (merge_parts' check).
    ASSERT_EQ(normalized(r.begin), at) << "rank " << rank;
    at = normalized(r.end);
    const index::PartRecord rec = shard.part_record();
    EXPECT_EQ(rec.rank, static_cast<uint32_t>(rank));
    EXPECT_EQ(rec.world, static_cast<uint32_t>(world));
    EXPECT_EQ(rec.input_documents, in.docs.size());
  }
  EXPECT_EQ(at, (index::PartPosition{in.docs.size(), 0}));
  EXPECT_EQ(scanned, all);  // each chunk exactly once, rank after rank in input order
}

TEST(IndexShard, EveryChunkOnceInInputOrderForAnyWorld) {
  for (uint64_t seed : {1u, 2u, 3u, 4u}) {
    const Input in = random_input(seed, 1 + static_cast<int>(seed * 5 % 17));
    for (int world : {1, 2, 3, 4, 7, 8, 16, 50})
      for (int64_t chunk : {16, 100, 4096})
        check_split(in, world, chunk);
  }
}

TEST(IndexShard, MoreRanksThanBytesOrChunks) {
  Input in;
  std::mt19937_64 rng(5);
  in.docs = {{"a", "xy"}, {"b", "z"}};
  for (const Document& d : in.docs)
    in.offsets.push_back(tokenize(d.text, rng));
  for (int world : {1, 2, 3, 5, 9})
    check_split(in, world, 16);
}

TEST(IndexShard, OneLongDocumentIsSharedEvenly) {
  Input in;
  in.docs = {{"long", std::string(1 << 20, 'x')}};
  in.offsets.emplace_back();
  for (uint32_t b = 0; b < (1u << 20); b += 4)
    in.offsets[0].push_back({b, b + 4});  // 262,144 tokens: 256 chunks of 1,024
  for (int world : {2, 4, 8}) {
    for (int rank = 0; rank < world; ++rank) {
      const IndexShard shard(in.docs, rank, world);
      EXPECT_EQ(shard.first_document(), 0u);
      const IndexShard::Chunks c = shard.chunks(0, in.offsets[0], 1024);
      EXPECT_EQ(c.end - c.first, 256 / world) << "rank " << rank << " of " << world;
    }
  }
}

TEST(IndexShard, RanksTokenizeOnlyTheDocumentsOverlappingTheirBytes) {
  Input in;
  for (int d = 0; d < 8; ++d)
    in.docs.push_back({"d" + std::to_string(d), std::string(100, 'x')});
  // 800 bytes, 4 ranks of 200: documents 0-1, 2-3, 4-5, 6-7.
  for (int rank = 0; rank < 4; ++rank) {
    const IndexShard shard(in.docs, rank, 4);
    EXPECT_EQ(shard.first_document(), static_cast<size_t>(2 * rank));
    EXPECT_EQ(shard.end_document(), static_cast<size_t>(2 * rank + 2));
    EXPECT_TRUE(shard.starts_inside(static_cast<size_t>(2 * rank)));
  }
  // 3 ranks: [0, 266) [266, 533) [533, 800): rank 1 needs documents 2-5.
  const IndexShard mid(in.docs, 1, 3);
  EXPECT_EQ(mid.first_document(), 2u);
  EXPECT_EQ(mid.end_document(), 6u);
  EXPECT_FALSE(mid.starts_inside(2));
  EXPECT_TRUE(mid.starts_inside(3));
}

TEST(IndexShard, InputFingerprintCoversNamesAndTexts) {
  std::vector<Document> a = {{"x", "hello"}, {"y", "world"}};
  const std::string h = IndexShard(a, 0, 2).part_record().input_xxh3_64;
  EXPECT_EQ(h.size(), 16u);
  EXPECT_EQ(IndexShard(a, 1, 2).part_record().input_xxh3_64, h);  // the same on every rank
  std::vector<Document> b = {{"xh", "ello"}, {"y", "world"}};
  EXPECT_NE(IndexShard(b, 0, 2).part_record().input_xxh3_64, h);
  b = {{"x", "hello"}, {"y", "worle"}};
  EXPECT_NE(IndexShard(b, 0, 2).part_record().input_xxh3_64, h);
  EXPECT_EQ(IndexShard(a, 0, 2).part_record().input_bytes, 10u);
}

// Sets the launcher variables for one test and restores the environment after it.
class Env {
 public:
  explicit Env(std::vector<std::pair<std::string, std::string>> vars) {
    for (const char* name :
         {"RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"}) {
      const char* v = std::getenv(name);
      saved_.emplace_back(name, v ? std::optional<std::string>(v) : std::nullopt);
      ::unsetenv(name);
    }
    for (const auto& [k, v] : vars)
      ::setenv(k.c_str(), v.c_str(), 1);
  }
  ~Env() {
    for (const auto& [k, v] : saved_) {
      if (v) {
        ::setenv(k.c_str(), v->c_str(), 1);
      } else {
        ::unsetenv(k.c_str());
      }
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

std::string usage_error(std::vector<std::pair<std::string, std::string>> vars) {
  const Env env(std::move(vars));
  try {
    LaunchEnvironment::from_environment();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(LaunchEnvironment, ReadsTorchrunThenSlurm) {
  {
    const Env env({});
    const LaunchEnvironment l = LaunchEnvironment::from_environment();
    EXPECT_EQ(l.rank, 0);
    EXPECT_EQ(l.world, 1);
    EXPECT_EQ(l.local_rank, 0);
    EXPECT_FALSE(l.sharded());
  }
  {
    const Env env({{"RANK", "5"},
                   {"WORLD_SIZE", "8"},
                   {"LOCAL_RANK", "1"},
                   {"SLURM_PROCID", "0"},
                   {"SLURM_NTASKS", "2"},
                   {"SLURM_LOCALID", "0"}});
    const LaunchEnvironment l = LaunchEnvironment::from_environment();
    EXPECT_EQ(l.rank, 5);
    EXPECT_EQ(l.world, 8);
    EXPECT_EQ(l.local_rank, 1);  // torchrun's variables win inside a Slurm allocation
    EXPECT_TRUE(l.sharded());
  }
  {
    const Env env({{"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", "3"}});
    const LaunchEnvironment l = LaunchEnvironment::from_environment();
    EXPECT_EQ(l.rank, 3);
    EXPECT_EQ(l.world, 4);
    EXPECT_EQ(l.local_rank, 3);
    EXPECT_EQ(l.rank_variable, "SLURM_PROCID");
  }
  EXPECT_NE(usage_error({{"RANK", "1"}}).find("set both RANK and WORLD_SIZE"), std::string::npos);
  EXPECT_NE(
      usage_error({{"RANK", "2"}, {"WORLD_SIZE", "2"}}).find("RANK=2 must be below WORLD_SIZE=2"),
      std::string::npos);
  EXPECT_NE(usage_error({{"SLURM_PROCID", "x"}, {"SLURM_NTASKS", "2"}}).find("SLURM_PROCID=x"),
            std::string::npos);
  EXPECT_NE(
      usage_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "-1"}}).find("LOCAL_RANK=-1"),
      std::string::npos);
}

// Every bad value is one UsageError line naming the variable and its value.
TEST(LaunchEnvironment, BadValuesNameTheVariable) {
  const std::vector<std::pair<std::vector<std::pair<std::string, std::string>>, std::string>>
      cases = {
          {{{"WORLD_SIZE", "2"}}, "set both RANK and WORLD_SIZE (or neither)"},
          {{{"SLURM_NTASKS", "4"}}, "set both SLURM_PROCID and SLURM_NTASKS (or neither)"},
          {{{"SLURM_PROCID", "1"}}, "set both SLURM_PROCID and SLURM_NTASKS (or neither)"},
          {{{"RANK", "0"}, {"WORLD_SIZE", "0"}}, "WORLD_SIZE=0 must be at least 1"},
          {{{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "0"}}, "SLURM_NTASKS=0 must be at least 1"},
          {{{"SLURM_PROCID", "4"}, {"SLURM_NTASKS", "4"}},
           "SLURM_PROCID=4 must be below SLURM_NTASKS=4"},
          {{{"RANK", "1"}, {"WORLD_SIZE", "two"}}, "WORLD_SIZE=two is not a valid number"},
          {{{"RANK", "1 "}, {"WORLD_SIZE", "2"}}, "RANK=1  is not a valid number"},
          {{{"RANK", "-1"}, {"WORLD_SIZE", "2"}}, "RANK=-1 is not a valid number"},
          {{{"RANK", "0"}, {"WORLD_SIZE", "99999999999999999999"}},
           "WORLD_SIZE=99999999999999999999 is not a valid number"},
          {{{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_LOCALID", "0x1"}},
           "SLURM_LOCALID=0x1 is not a valid number"},
      };
  for (const auto& [vars, want] : cases) {
    const std::string got = usage_error(vars);
    EXPECT_EQ(got, want);
    EXPECT_EQ(got.find('\n'), std::string::npos) << got;
  }
  // Empty variables count as unset: a job step that clears them runs as one process.
  {
    const Env env({{"RANK", ""}, {"WORLD_SIZE", ""}});
    EXPECT_FALSE(LaunchEnvironment::from_environment().sharded());
  }
  // A rank of one process (WORLD_SIZE=1) is not sharded.
  {
    const Env env({{"RANK", "0"}, {"WORLD_SIZE", "1"}});
    EXPECT_FALSE(LaunchEnvironment::from_environment().sharded());
  }
}

}  // namespace
}  // namespace s3
