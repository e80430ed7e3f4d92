// sae/encoder.h and sae/topk.h against the oracle (the formula in float64 + a full sort), the
// feature bitmap against a brute-force union, and CPU against CUDA.
#include "sae/encoder.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <set>
#include <tuple>

#include "core/base/error.h"
#include "sae/topk.h"
#include "sae_test_util.h"

namespace {

using namespace s3::sae;
using namespace s3::sae::testing;

EncoderOptions cpu_options(const std::string& dtype = "float32") {
  EncoderOptions o;
  o.device = "cpu";
  o.dtype = parse_encoder_dtype(dtype);
  return o;
}

// Exact comparison of an encoder output with the oracle; returns the number of differing rows.
int64_t mismatching_rows(const Encoder::Output& got, const std::vector<OracleRow>& want,
                         bool exact_values, double tol = 0) {
  const at::Tensor ids = got.ids.to(at::kCPU).to(at::kLong).contiguous();
  const at::Tensor vals = got.values.to(at::kCPU).to(at::kDouble).contiguous();
  const int64_t n = ids.size(0), k = ids.size(1);
  const auto ia = ids.accessor<int64_t, 2>();
  const auto va = vals.accessor<double, 2>();
  int64_t bad = 0;
  for (int64_t r = 0; r < n; ++r) {
    bool ok = true;
    for (int64_t i = 0; i < k && ok; ++i) {
      ok = ia[r][i] == want[r].ids[i];
      const double v = va[r][i];
      ok = ok && (exact_values ? v == want[r].values[i]
                               : std::abs(v - want[r].values[i]) <= tol * (1 + std::abs(v)));
    }
    bad += !ok;
  }
  return bad;
}

// ------------------------------------------------------------------------------------------------
// Exactness against the formula.

class EncoderGrid : public ::testing::TestWithParam<std::tuple<std::string, int64_t, int64_t>> {};

TEST_P(EncoderGrid, MatchesFormulaExactlyIncludingTies) {
  const auto [dtype, group_size, max_rows] = GetParam();
  const int64_t f = 512, d = 16, k = 16, n = 300;
  const SaeWeights w = grid_weights(f, d, 1);
  const at::Tensor x = grid_inputs(n, d, 2);
  EncoderOptions o = cpu_options(dtype);
  o.group_size = group_size;
  o.max_rows = max_rows;
  o.exact_rows = n;  // every undecided row is recomputed: the output must be exact
  const Encoder enc(w, k, o);
  const auto got = enc.encode(x);
  ASSERT_EQ(got.ids.sizes(), (std::vector<int64_t>{n, k}));
  EXPECT_EQ(got.ids.scalar_type(), at::kInt);
  EXPECT_EQ(got.values.scalar_type(), at::kFloat);
  EXPECT_EQ(mismatching_rows(got, oracle_topk(w, x, k), /*exact_values=*/true), 0);
  EXPECT_EQ(enc.unresolved_rows(), 0);
}

INSTANTIATE_TEST_SUITE_P(DtypesGroupsPasses, EncoderGrid,
                         ::testing::Combine(::testing::Values("float32", "bfloat16"),
                                            ::testing::Values(1, 4, 8),
                                            ::testing::Values(32768, 64)));

TEST(Encoder, UndecidedRowsAreCountedNeverSilent) {
  // Without the dense fallback, rows the prefilter can not decide may differ from the oracle;
  // every such row must be counted.
  const int64_t f = 512, d = 16, k = 16, n = 300;
  const SaeWeights w = grid_weights(f, d, 3);
  const at::Tensor x = grid_inputs(n, d, 4);
  EncoderOptions o = cpu_options();
  o.exact_rows = 0;
  o.extra_groups = 0;
  const Encoder enc(w, k, o);
  const int64_t bad = mismatching_rows(enc.encode(x), oracle_topk(w, x, k), true);
  EXPECT_LE(bad, enc.unresolved_rows());
  EXPECT_GT(enc.unresolved_rows(), 0) << "the grid data should produce undecided rows";
}

TEST(Encoder, MatchesFormulaOnContinuousData) {
  // float32 arithmetic vs the float64 oracle: values agree to rounding; ids agree except where
  // the oracle's k-th and (k+1)-th values are closer than rounding can separate. The prefilter
  // decides every row on its own (exact_rows = 0, nothing unresolved).
  const int64_t f = 1024, d = 32, k = 24, n = 400;
  const SaeWeights w = random_weights(f, d, 5);
  const at::Tensor x = random_inputs(n, d, 6);
  EncoderOptions o = cpu_options();
  o.exact_rows = 0;
  const Encoder enc(w, k, o);
  const auto got = enc.encode(x);
  const auto want = oracle_topk(w, x, k);
  EXPECT_EQ(enc.unresolved_rows(), 0);
  const at::Tensor ids_t = got.ids.to(at::kLong);
  const at::Tensor vals_t = got.values.to(at::kDouble);
  const auto ids = ids_t.accessor<int64_t, 2>();
  const auto vals = vals_t.accessor<double, 2>();
  int64_t compared = 0;
  for (int64_t r = 0; r < n; ++r) {
    if (want[r].kth - want[r].next < 1e-4 * (1 + std::abs(want[r].kth))) continue;
    ++compared;
    for (int64_t i = 0; i < k; ++i) {
      ASSERT_EQ(ids[r][i], want[r].ids[i]) << "row " << r << " slot " << i;
      ASSERT_NEAR(vals[r][i], want[r].values[i], 1e-4 * (1 + want[r].values[i]));
    }
  }
  EXPECT_GT(compared, n * 9 / 10);
}

TEST(TopK, DenseAndPrefilteredAgreeOnBf16) {
  // Many bf16 ties on continuous data: both forms implement the same rule.
  at::Generator gen = at::detail::createCPUGenerator(7);
  const at::Tensor pre = at::randn({256, 2048}, gen, at::kFloat).to(at::kBFloat16);
  const TopKResult a = topk_relu_dense(pre, 64, true);
  const TopKResult b = topk_relu(pre, 64, TopKOptions{8, 32, 256}, true);
  EXPECT_TRUE(at::equal(a.ids, b.ids));
  EXPECT_TRUE(at::equal(a.values, b.values));
  EXPECT_EQ(b.unresolved.item<int64_t>(), 0);
}

TEST(Encoder, TiesGoToTheLowerId) {
  const int64_t f = 256, d = 8, k = 10;
  SaeWeights w = grid_weights(f, d, 8);
  w.W_enc.zero_();
  w.b_enc.fill_(1.0f);                    // every latent = 1: one big tie
  w.b_enc.narrow(0, 200, 3).fill_(2.0f);  // except 200..202, larger
  const Encoder enc(w, k, cpu_options("bfloat16"));
  const auto got = enc.encode(grid_inputs(5, d, 9));
  const std::vector<int> want = {200, 201, 202, 0, 1, 2, 3, 4, 5, 6};
  for (int64_t r = 0; r < 5; ++r) {
    for (int64_t i = 0; i < k; ++i)
      EXPECT_EQ(got.ids[r][i].item<int>(), want[i]);
  }
  EXPECT_EQ(got.values[0][0].item<float>(), 2.0f);
  EXPECT_EQ(got.values[0][9].item<float>(), 1.0f);
}

TEST(Encoder, ZeroNegativeAndFewPositiveRows) {
  const int64_t f = 256, d = 8, k = 10;
  SaeWeights w = grid_weights(f, d, 10);
  w.b_enc.fill_(-1.0f);
  // Rows equal to b_dec give pre = b_enc exactly: all negative -> nothing active.
  at::Tensor x = w.b_dec.unsqueeze(0).repeat({4, 1});
  // A row of zeros with b_dec = 0, b_enc = 0: all pre-activations are exactly 0 -> inactive.
  SaeWeights w0 = w;
  w0.b_dec = at::zeros_like(w.b_dec);
  w0.b_enc = at::zeros_like(w.b_enc);
  for (const auto& [weights, input] : {std::pair{w, x}, std::pair{w0, at::zeros({3, d})}}) {
    const Encoder enc(weights, k, cpu_options());
    const auto got = enc.encode(input);
    EXPECT_TRUE(at::all(got.ids == -1).item<bool>());
    EXPECT_TRUE(at::all(got.values == 0).item<bool>());
  }
  // Exactly three positive latents: they come first, sorted, the rest inactive.
  w.b_enc.index_put_({at::tensor({7, 100, 3})}, at::tensor({0.5f, 2.0f, 0.5f}));
  const Encoder enc(w, k, cpu_options());
  const auto got = enc.encode(x);
  EXPECT_EQ(got.ids[0][0].item<int>(), 100);
  EXPECT_EQ(got.ids[0][1].item<int>(), 3);
  EXPECT_EQ(got.ids[0][2].item<int>(), 7);
  EXPECT_EQ(got.ids[0][3].item<int>(), -1);
  EXPECT_EQ(got.values[0][3].item<float>(), 0.0f);
}

TEST(Encoder, EmptyInput) {
  const Encoder enc(grid_weights(64, 8, 1), 4, cpu_options());
  const auto got = enc.encode(at::zeros({0, 8}));
  EXPECT_EQ(got.ids.size(0), 0);
  EXPECT_EQ(enc.feature_bitmap(at::zeros({0, 8}), 2).sizes(), (std::vector<int64_t>{64, 0}));
}

// ------------------------------------------------------------------------------------------------
// Bitmap.

// Brute force: bit (f, t) set iff f is among the active ids of any of token t's H rows.
at::Tensor brute_bitmap(const Encoder::Output& code, int64_t t, int64_t h, int64_t f) {
  const int64_t words = (t + 63) / 64;
  std::vector<uint64_t> bits(f * words, 0);
  const at::Tensor ids = code.ids.to(at::kCPU).to(at::kLong).contiguous();
  const auto ia = ids.accessor<int64_t, 2>();
  const int64_t k = ids.size(1);
  for (int64_t tok = 0; tok < t; ++tok) {
    for (int64_t hh = 0; hh < h; ++hh) {
      for (int64_t i = 0; i < k; ++i) {
        const int64_t id = ia[tok * h + hh][i];
        if (id >= 0) bits[id * words + tok / 64] |= uint64_t{1} << (tok % 64);
      }
    }
  }
  at::Tensor out = at::empty({f, words}, at::kLong);
  std::memcpy(out.data_ptr(), bits.data(), bits.size() * 8);
  return out;
}

class EncoderBitmap : public ::testing::TestWithParam<std::tuple<int64_t, int64_t, int64_t>> {};

TEST_P(EncoderBitmap, MatchesBruteForceUnionOverHeads) {
  const auto [t, h, max_rows] = GetParam();
  const int64_t f = 512, d = 16, k = 12;
  const SaeWeights w = grid_weights(f, d, 11);
  const at::Tensor x = grid_inputs(t * h, d, 12);
  EncoderOptions o = cpu_options();
  o.max_rows = max_rows;
  o.exact_rows = t * h;
  const Encoder enc(w, k, o);
  const at::Tensor bm = enc.feature_bitmap(x, h);
  ASSERT_EQ(bm.scalar_type(), at::kLong);
  ASSERT_EQ(bm.sizes(), (std::vector<int64_t>{f, (t + 63) / 64}));
  EXPECT_TRUE(at::equal(bm, brute_bitmap(enc.encode(x), t, h, f)));
  // [T, H, D] input is the same thing.
  EXPECT_TRUE(at::equal(bm, enc.feature_bitmap(x.view({t, h, d}), h)));
}

INSTANTIATE_TEST_SUITE_P(Shapes, EncoderBitmap,
                         ::testing::Values(std::tuple{150, 3, 32768}, std::tuple{150, 3, 40},
                                           std::tuple{1, 1, 32768}, std::tuple{64, 2, 32768},
                                           std::tuple{128, 4, 9}, std::tuple{200, 1, 64}));

TEST(Encoder, BitmapHasTokenInBit63AndPaddingClear) {
  // Token 63 lands in the sign bit of its int64 word; padding tokens stay zero.
  const int64_t f = 64, d = 8;
  SaeWeights w = grid_weights(f, d, 13);
  w.W_enc.zero_();
  w.b_enc.fill_(-1);
  w.b_enc[5] = 1;  // latent 5 fires for every token
  const Encoder enc(w, 4, cpu_options());
  const at::Tensor bm = enc.feature_bitmap(at::zeros({70, d}), 1);
  EXPECT_EQ(static_cast<uint64_t>(bm[5][0].item<int64_t>()), ~uint64_t{0});
  EXPECT_EQ(static_cast<uint64_t>(bm[5][1].item<int64_t>()), (uint64_t{1} << 6) - 1);
  EXPECT_EQ(at::count_nonzero(bm).item<int64_t>(), 2);
}

// ------------------------------------------------------------------------------------------------
// Decode, input layout helpers, errors.

TEST(Encoder, DecodeMatchesFormula) {
  const int64_t f = 256, d = 16, k = 8;
  const SaeWeights w = random_weights(f, d, 14);
  const at::Tensor x = random_inputs(50, d, 15);
  const Encoder enc(w, k, cpu_options());
  const auto code = enc.encode(x);
  at::Tensor z = at::zeros({50, f}, at::kDouble);
  z.scatter_add_(1, code.ids.to(at::kLong).clamp_min(0), code.values.to(at::kDouble));
  const at::Tensor want = at::mm(z, w.W_dec.to(at::kDouble)) + w.b_dec.to(at::kDouble);
  EXPECT_TRUE(at::allclose(enc.decode(code).to(at::kDouble), want, 1e-5, 1e-5));
}

TEST(Encoder, RowsFromKeysAndQueries) {
  const at::Tensor keys = at::arange(2 * 3 * 4, at::kFloat).view({2, 3, 4});  // T 2, Hkv 3, D 4
  EXPECT_TRUE(at::equal(sae_rows_from_keys(keys, HeadMode::kPerHead), keys.view({6, 4})));
  EXPECT_TRUE(at::equal(sae_rows_from_keys(keys, HeadMode::kConcat), keys.view({2, 12})));
  // 6 query heads over 3 KV heads (G = 2): concat row (t, g) = heads g, 2 + g, 4 + g.
  const at::Tensor q = at::arange(2 * 6 * 4, at::kFloat).view({2, 6, 4});
  const at::Tensor rows = sae_rows_from_queries(q, 3, HeadMode::kConcat);
  ASSERT_EQ(rows.sizes(), (std::vector<int64_t>{4, 12}));
  EXPECT_TRUE(at::equal(rows[1], at::cat({q[0][1], q[0][3], q[0][5]})));
  EXPECT_TRUE(at::equal(rows[2], at::cat({q[1][0], q[1][2], q[1][4]})));
  EXPECT_TRUE(at::equal(sae_rows_from_queries(q, 3, HeadMode::kPerHead), q.view({12, 4})));
  EXPECT_THROW(sae_rows_from_queries(q, 4, HeadMode::kConcat), s3::Error);
}

TEST(Encoder, BadInputErrors) {
  const SaeWeights w = grid_weights(64, 8, 16);
  EncoderOptions o = cpu_options();
  o.k = 65;
  try {
    Encoder enc(w, 4, o);
    FAIL();
  } catch (const s3::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("64 latents"), std::string::npos) << e.what();
  }
  const Encoder enc(w, 4, cpu_options());
  try {
    enc.encode(at::zeros({3, 9}));
    FAIL();
  } catch (const s3::Error& e) {
    EXPECT_NE(std::string(e.what()).find("[N, 8]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(enc.feature_bitmap(at::zeros({7, 8}), 2), s3::Error);  // 7 rows, 2 heads
  if (!torch::cuda::is_available()) {
    EncoderOptions c = cpu_options();
    c.device = "cuda";
    EXPECT_THROW(Encoder(w, 4, c), s3::Error);
  }
}

TEST(Encoder, FusedBitmapIsRefusedOffCuda) {
  const SaeWeights w = grid_weights(64, 8, 21);
  EncoderOptions o = cpu_options();
  o.bitmap = BitmapMode::kFused;
  EXPECT_THROW(Encoder(w, 4, o), s3::UsageError);
  o.bitmap = BitmapMode::kAten;
  EXPECT_FALSE(Encoder(w, 4, o).uses_fused_bitmap());
}

// ------------------------------------------------------------------------------------------------
// GPU (skipped without CUDA).

// The fused kernel against the ATen path on the device, on tie-heavy grid values (many equal
// values at the k-th rank), rows with fewer than k positive values, widths that are not a multiple
// of the kernel's vector loads, several heads and several passes.
TEST(EncoderCuda, FusedBitmapMatchesAtenPath) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  struct Case {
    int64_t f, d, k, t, h, max_rows;
  };
  for (const Case c : {Case{2048, 16, 32, 300, 4, 8192}, Case{1000, 16, 20, 130, 3, 100},
                       Case{4099, 8, 64, 70, 1, 8192}, Case{512, 16, 512, 65, 2, 8192}}) {
    const SaeWeights w = grid_weights(c.f, c.d, 22);
    const at::Tensor x = grid_inputs(c.t * c.h, c.d, 23).to(at::kCUDA);
    for (const std::string dtype : {"float32", "bfloat16", "float16"}) {
      EncoderOptions o;
      o.device = "cuda";
      o.dtype = parse_encoder_dtype(dtype);
      o.max_rows = c.max_rows;
      o.exact_rows = c.t * c.h;
      o.bitmap = BitmapMode::kAten;
      const Encoder aten(w, c.k, o);
      o.bitmap = BitmapMode::kFused;
      const Encoder fused(w, c.k, o);
      ASSERT_TRUE(fused.uses_fused_bitmap());
      const at::Tensor want = aten.feature_bitmap(x, c.h);
      EXPECT_EQ(aten.unresolved_rows(), 0);
      EXPECT_TRUE(at::equal(fused.feature_bitmap(x, c.h), want))
          << dtype << " f=" << c.f << " k=" << c.k << " t=" << c.t << " h=" << c.h;
    }
  }
}

// The kernel's candidate-list path (k <= 128) and its full-row path give the ATen path's bitmaps on
// continuous values (bf16 rounding makes ties at the k-th value common), dense rows and rows with
// fewer positive values than k; the candidate list settles nearly every continuous row, k > 128
// always takes the full-row path, and so does every row with the list turned off.
TEST(EncoderCuda, FusedBitmapCandidatePathMatchesAtenPath) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const int64_t f = 4096, d = 64, t = 512, h = 4;
  const at::Tensor x = random_inputs(t * h, d, 31).to(at::kCUDA);
  for (const double shift : {0.0, -10.0}) {  // -10: ~25 positive pre-activations per row
    SaeWeights w = random_weights(f, d, 30);
    w.b_enc = w.b_enc + shift;
    for (const int64_t k : {32, 128, 200}) {
      for (const std::string dtype : {"float32", "bfloat16"}) {
        EncoderOptions o;
        o.device = "cuda";
        o.dtype = parse_encoder_dtype(dtype);
        o.exact_rows = t * h;
        o.bitmap = BitmapMode::kAten;
        const Encoder aten(w, k, o);
        o.bitmap = BitmapMode::kFused;
        const Encoder fused(w, k, o);
        o.fused_candidates = false;
        const Encoder full(w, k, o);
        const std::string what =
            dtype + " k=" + std::to_string(k) + " shift=" + std::to_string(shift);
        const at::Tensor want = aten.feature_bitmap(x, h);
        EXPECT_TRUE(at::equal(fused.feature_bitmap(x, h), want)) << what;
        EXPECT_TRUE(at::equal(full.feature_bitmap(x, h), want)) << what;
        EXPECT_EQ(full.fused_full_rows(), t * h) << what;
        if (k > 128) {
          EXPECT_EQ(fused.fused_full_rows(), t * h) << what;
        } else {
          EXPECT_LT(fused.fused_full_rows(), t * h / 20) << what;
        }
      }
    }
  }
}

TEST(EncoderCuda, MatchesCpuExactly) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const int64_t f = 2048, d = 16, k = 32, t = 300, h = 4;
  const SaeWeights w = grid_weights(f, d, 17);
  const at::Tensor x = grid_inputs(t * h, d, 18);
  EncoderOptions o = cpu_options();
  o.exact_rows = t * h;
  const Encoder cpu(w, k, o);
  const auto want = cpu.encode(x);
  const at::Tensor want_bm = cpu.feature_bitmap(x, h);
  EXPECT_EQ(mismatching_rows(want, oracle_topk(w, x, k), true), 0);
  for (const std::string dtype : {"float32", "bfloat16", "float16"}) {
    EncoderOptions g = o;
    g.device = "cuda";
    g.dtype = parse_encoder_dtype(dtype);
    const Encoder gpu(w, k, g);
    const auto got = gpu.encode(x.to(at::kCUDA));
    EXPECT_TRUE(at::equal(got.ids.cpu(), want.ids)) << dtype;
    EXPECT_TRUE(at::equal(got.values.cpu(), want.values)) << dtype;
    EXPECT_TRUE(at::equal(gpu.feature_bitmap(x, h).cpu(), want_bm)) << dtype;
    EXPECT_EQ(gpu.unresolved_rows(), 0);
  }
}

TEST(EncoderCuda, PaperSizeBitmapMatchesItsIds) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const int64_t f = 16384, d = 128, k = 128, t = 4096, h = 8;
  const SaeWeights w = random_weights(f, d, 19);
  const at::Tensor x = random_inputs(t * h, d, 20).to(at::kCUDA);
  EncoderOptions g;
  g.device = "cuda";
  const Encoder gpu(w, k, g);
  const at::Tensor bm = gpu.feature_bitmap(x, h);
  const auto code = gpu.encode(x);
  // Brute force on the device: the same union built with a dense [T, F] mask.
  at::Tensor dense = at::zeros({t, f + 1}, x.options().dtype(at::kBool));
  const at::Tensor ids = code.ids.to(at::kLong).view({t, h * k});
  dense.scatter_(1, at::where(ids >= 0, ids, f), true);
  const at::Tensor bits =
      dense.narrow(1, 0, f).t().contiguous().view({f, t / 64, 64}).to(at::kLong);
  at::Tensor words = at::zeros({f, t / 64}, bits.options());
  for (int j = 0; j < 64; ++j)
    words.bitwise_or_(bits.select(2, j).bitwise_left_shift(j));
  EXPECT_TRUE(at::equal(bm, words));
  // The bf16 sets agree with a float32 CPU encode up to rounding near the k-th value.
  const Encoder cpu(w, k, cpu_options());
  const at::Tensor a = code.ids.narrow(0, 0, 512).cpu().to(at::kLong);
  const at::Tensor b = cpu.encode(x.narrow(0, 0, 512).cpu()).ids.to(at::kLong);
  const double overlap =
      (a.unsqueeze(2) == b.unsqueeze(1)).any(2).to(at::kDouble).mean().item<double>();
  EXPECT_GT(overlap, 0.9);
  EXPECT_EQ(gpu.unresolved_rows(), 0);
}

}  // namespace
