// Posting codecs: randomized round trips of every registered codec on edge lengths and gaps, exact
// byte counts, truncation detection, and the registry's stable names and ids.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "core/base/error.h"
#include "index/codec_registry.h"
#include "index/posting_accumulator.h"

namespace s3::index {
namespace {

// Lengths around the interesting block sizes: StreamVByte's 4-value control byte, 128-value blocks,
// and the varint decoder's fast-path window.
const std::vector<size_t> kLengths = {0,  1,  2,  3,   4,   5,   7,    8,   9,
                                      15, 16, 17, 127, 128, 129, 1000, 4099};

std::vector<uint32_t> random_list(std::mt19937_64& rng, size_t n, int gap_kind) {
  std::set<uint32_t> s;
  uint64_t v = rng() % 3;
  while (s.size() < n) {
    if (v > 0xFFFFFFFFull) break;
    s.insert(static_cast<uint32_t>(v));
    uint64_t gap;
    switch (gap_kind) {
      case 0:
        gap = 1;
        break;  // consecutive
      case 1:
        gap = 1 + rng() % 20;
        break;  // dense
      case 2:
        gap = 1 + rng() % 100000;
        break;  // sparse
      default:
        gap = 1 + (rng() >> (rng() % 64)) % (uint64_t{1} << 31);
        break;  // wild
    }
    v += gap;
  }
  return {s.begin(), s.end()};
}

class IndexCodec : public ::testing::TestWithParam<const PostingCodec*> {};

TEST_P(IndexCodec, RoundTripsEdgeLengthsAndGaps) {
  const PostingCodec& codec = *GetParam();
  std::mt19937_64 rng(42);
  for (size_t n : kLengths) {
    for (int kind = 0; kind < 4; ++kind) {
      for (int rep = 0; rep < 3; ++rep) {
        std::vector<uint32_t> values = random_list(rng, n, kind);
        std::vector<uint8_t> buf = {0xAB};  // encode appends
        const size_t written = codec.encode(values, buf);
        ASSERT_EQ(buf.size(), written + 1);
        ASSERT_EQ(buf[0], 0xAB);
        // Exact span, and the same bytes followed by junk: consumed must equal written either way.
        for (int junk = 0; junk < 2; ++junk) {
          std::vector<uint8_t> data(buf.begin() + 1, buf.end());
          if (junk) data.insert(data.end(), 40, 0xFF);
          std::vector<uint32_t> out(values.size() + 1, 0xDEADBEEF);
          const size_t used = codec.decode(data, values.size(), out.data());
          ASSERT_EQ(used, written) << codec.name() << " n=" << n << " kind=" << kind;
          ASSERT_EQ(out.back(), 0xDEADBEEF) << "wrote past n";
          out.pop_back();
          ASSERT_EQ(out, values) << codec.name() << " n=" << n << " kind=" << kind;
        }
      }
    }
  }
}

TEST_P(IndexCodec, ExtremeValues) {
  const PostingCodec& codec = *GetParam();
  const std::vector<std::vector<uint32_t>> cases = {
      {0},
      {0xFFFFFFFFu},     // largest first value
      {0, 0xFFFFFFFFu},  // largest gap (2^32 - 1)
      {0xFFFFFFFEu, 0xFFFFFFFFu},
      {1, 2, 3, 0x7FFFFFFF, 0x80000000u, 0xFFFFFFF0u},
  };
  for (const auto& values : cases) {
    std::vector<uint8_t> buf;
    const size_t written = codec.encode(values, buf);
    std::vector<uint32_t> out(values.size());
    ASSERT_EQ(codec.decode(buf, values.size(), out.data()), written);
    EXPECT_EQ(out, values);
  }
}

TEST_P(IndexCodec, TruncatedInputIsAnErrorNeverAnOverread) {
  const PostingCodec& codec = *GetParam();
  std::mt19937_64 rng(7);
  for (size_t n : {1, 2, 5, 17, 129}) {
    std::vector<uint32_t> values = random_list(rng, n, 3);
    std::vector<uint8_t> buf;
    codec.encode(values, buf);
    for (size_t cut = 0; cut < buf.size(); ++cut) {
      // Heap copy of exactly `cut` bytes so ASan/valgrind would catch a read past it.
      std::vector<uint8_t> data(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(cut));
      std::vector<uint32_t> out(n);
      EXPECT_EQ(codec.decode(data, n, out.data()), PostingCodec::kDecodeError)
          << codec.name() << " n=" << n << " cut=" << cut;
    }
  }
}

// decode_add adds exactly what decode's values say, inside the range only, whatever the shift; a
// truncated list is an error there too.
TEST_P(IndexCodec, DecodeAddMatchesDecode) {
  const PostingCodec& codec = *GetParam();
  std::mt19937_64 rng(9);
  for (size_t n : kLengths) {
    for (int kind = 0; kind < 3; ++kind) {
      const std::vector<uint32_t> values = random_list(rng, n, kind);
      std::vector<uint8_t> buf;
      const size_t written = codec.encode(values, buf);
      const uint64_t top = values.empty() ? 10 : uint64_t{values.back()} + 10;
      for (const uint64_t shift : {uint64_t{0}, uint64_t{5}, uint64_t{1} << 32}) {
        const uint64_t lo = shift + (rng() % (top / 2 + 1)), hi = lo + 1 + rng() % top;
        std::vector<float> want(hi - lo, 0.25f), got(want);
        for (uint32_t v : values)
          if (v + shift >= lo && v + shift < hi) want[v + shift - lo] += 1.5f;
        uint32_t last = 0xDEADBEEF;
        const PostingCodec::AddTarget target{got.data(), 1.5f, shift, lo, hi};
        ASSERT_EQ(codec.decode_add(buf, n, target, &last), written) << codec.name() << " n=" << n;
        ASSERT_EQ(got, want) << codec.name() << " n=" << n << " kind=" << kind
                             << " shift=" << shift;
        ASSERT_EQ(last, n > 0 ? values.back() : 0xDEADBEEF);
      }
      if (n > 0) {
        std::vector<uint8_t> cut(buf.begin(), buf.end() - 1);
        std::vector<float> acc(top, 0.0f);
        uint32_t last = 0;
        EXPECT_EQ(codec.decode_add(cut, n, {acc.data(), 1.0f, 0, 0, top}, &last),
                  PostingCodec::kDecodeError)
            << codec.name() << " n=" << n;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllCodecs, IndexCodec, ::testing::ValuesIn(all_codecs()),
                         [](const auto& param_info) {
                           std::string n(param_info.param->name());
                           for (char& c : n) {
                             if (c == '-') c = '_';
                           }
                           return n;
                         });

TEST(IndexCodecRegistry, NamesAndIdsAreStable) {
  // These ids are written into files: they must never change or be reused.
  ASSERT_NE(find_codec("varint-delta"), nullptr);
  ASSERT_NE(find_codec("streamvbyte-delta"), nullptr);
  EXPECT_EQ(find_codec("varint-delta")->id(), 1u);
  EXPECT_EQ(find_codec("streamvbyte-delta")->id(), 2u);
  EXPECT_EQ(find_codec(1u), find_codec("varint-delta"));
  EXPECT_EQ(find_codec(2u), find_codec("streamvbyte-delta"));
  EXPECT_EQ(find_codec(0u), nullptr);
  EXPECT_EQ(find_codec(99u), nullptr);
  EXPECT_NE(find_codec(kDefaultCodec), nullptr);
  std::set<uint32_t> ids;
  for (const PostingCodec* c : all_codecs())
    EXPECT_TRUE(ids.insert(c->id()).second) << c->name();
  EXPECT_THROW(codec_by_name("lz4"), UsageError);
  try {
    codec_by_name("lz4");
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("varint-delta"), std::string::npos);
  }
}

TEST(IndexCodecVarint, ConsecutivePositionsCostOneByte) {
  std::vector<uint32_t> values(1000);
  for (uint32_t i = 0; i < 1000; ++i)
    values[i] = 5000 + i;
  std::vector<uint8_t> buf;
  EXPECT_EQ(find_codec("varint-delta")->encode(values, buf), 2u + 999u);  // 5000 takes 2 bytes
}

// The accumulator's two ingestion paths against each other and a brute-force set, and its transcode
// to every codec.
TEST(IndexAccumulator, BitmapAndIdsMatchBruteForce) {
  const uint32_t d = 100;
  std::mt19937_64 rng(3);
  PostingAccumulator a(d), b(d);
  std::vector<std::set<uint32_t>> ref(d);
  uint32_t pos = 7;  // segment-local positions need not start at 0
  for (int chunk = 0; chunk < 40; ++chunk) {
    const uint32_t n = 1 + static_cast<uint32_t>(rng() % 150);
    const size_t words = (n + 63) / 64;
    std::vector<uint64_t> bits(d * words, 0);
    const uint32_t slots = 6;
    std::vector<int32_t> ids(size_t{n} * slots, -1);
    for (uint32_t t = 0; t < n; ++t) {
      for (uint32_t s = 0; s < slots; ++s) {
        if (rng() % 3 == 0) continue;
        const auto f = static_cast<int32_t>(rng() % (chunk % 5 == 0 ? 3 : d));  // some dense chunks
        ids[t * slots + s] = f;
        bits[f * words + t / 64] |= uint64_t{1} << (t % 64);
        ref[f].insert(pos + t);
      }
    }
    a.add_bitmap(pos, n, bits.data());
    b.add_ids(pos, n, slots, ids.data());
    pos += n + static_cast<uint32_t>(rng() % 300);  // gaps between ranges, some large
  }
  std::vector<uint32_t> la, lb;
  for (uint32_t f = 0; f < d; ++f) {
    a.decode(f, la);
    b.decode(f, lb);
    const std::vector<uint32_t> want(ref[f].begin(), ref[f].end());
    ASSERT_EQ(la, want) << "bitmap, feature " << f;
    ASSERT_EQ(lb, want) << "ids, feature " << f;
    ASSERT_EQ(a.df(f), want.size());
  }
  EXPECT_EQ(a.n_bytes(), b.n_bytes());
  for (const PostingCodec* codec : all_codecs()) {
    // A fresh accumulator per codec, fed one token at a time from the reference.
    PostingAccumulator c(d);
    std::map<uint32_t, std::vector<int32_t>> by_pos;
    for (uint32_t f = 0; f < d; ++f) {
      for (uint32_t p : ref[f])
        by_pos[p].push_back(static_cast<int32_t>(f));
    }
    for (auto& [p, fs] : by_pos)
      c.add_ids(p, 1, static_cast<uint32_t>(fs.size()), fs.data());
    c.transcode(*codec, 3);
    for (uint32_t f = 0; f < d; ++f) {
      const std::vector<uint32_t> want(ref[f].begin(), ref[f].end());
      std::vector<uint32_t> got(want.size());
      auto bytes = c.bytes(f);
      ASSERT_EQ(codec->decode(bytes, want.size(), got.data()), bytes.size());
      ASSERT_EQ(got, want) << codec->name() << " feature " << f;
    }
  }
}

}  // namespace
}  // namespace s3::index
