// Shared helpers of the sae/ tests: random SAEs, grid-valued data and the slow, obvious oracle.
#pragma once

#include <ATen/ATen.h>
#include <ftw.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <vector>

#include "sae/weights.h"

namespace s3::sae::testing {

// A scratch directory, removed with nftw: std::filesystem::remove_all must not be called in a
// program linked with pip's libtorch.so, which exports its own, crashing, copy of that function
// (the dynamic linker binds the program's call to it).
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/s3sae_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    nftw(
        path_.c_str(),
        [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
        FTW_DEPTH | FTW_PHYS);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Integer-valued weights and inputs: every pre-activation is a small integer, exact in float32
// and bfloat16 whatever the summation order, and ties are everywhere (the tie rule is tested on
// every row). |pre| <= 3 * d + 4 must stay <= 256 for bfloat16 exactness.
inline SaeWeights grid_weights(int64_t f, int64_t d, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  SaeWeights w;
  w.W_enc = at::randint(-1, 2, {f, d}, gen, at::kFloat);
  w.b_enc = at::randint(-4, 5, {f}, gen, at::kFloat);
  w.W_dec = at::randn({f, d}, gen, at::kFloat);
  w.W_dec = w.W_dec / w.W_dec.norm(2, {1}, true);
  w.b_dec = at::randint(-1, 2, {d}, gen, at::kFloat);
  return w;
}
inline at::Tensor grid_inputs(int64_t n, int64_t d, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  return at::randint(-2, 3, {n, d}, gen, at::kFloat);
}

// Continuous random SAE and inputs.
inline SaeWeights random_weights(int64_t f, int64_t d, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  SaeWeights w;
  w.W_dec = at::randn({f, d}, gen, at::kFloat);
  w.W_dec = w.W_dec / w.W_dec.norm(2, {1}, true);
  w.W_enc = w.W_dec + 0.3 * at::randn({f, d}, gen, at::kFloat);
  w.b_enc = -0.5 * at::rand({f}, gen, at::kFloat);
  w.b_dec = 0.2 * at::randn({d}, gen, at::kFloat);
  return w;
}
inline at::Tensor random_inputs(int64_t n, int64_t d, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  return at::randn({n, d}, gen, at::kFloat) * (1 + at::rand({n, 1}, gen, at::kFloat));
}

// The oracle: the formula in float64 with plain loops, then a full sort of each row by
// (value desc, id asc). Result per row: the k (id, value) pairs, inactive as (-1, 0).
struct OracleRow {
  std::vector<int64_t> ids;
  std::vector<double> values;
  double kth = 0, next = 0;  // k-th and (k+1)-th largest pre-activation (for near-tie checks)
};
inline std::vector<OracleRow> oracle_topk(const SaeWeights& w, const at::Tensor& x, int64_t k) {
  const at::Tensor we = w.W_enc.to(at::kDouble).contiguous(), be = w.b_enc.to(at::kDouble);
  const at::Tensor bd = w.b_dec.to(at::kDouble), xd = x.to(at::kDouble).contiguous();
  const int64_t n = x.size(0), d = x.size(1), f = we.size(0);
  const double* W = we.data_ptr<double>();
  const double* B = be.data_ptr<double>();
  const double* P = bd.data_ptr<double>();
  const double* X = xd.data_ptr<double>();
  std::vector<OracleRow> out(n);
  std::vector<double> pre(f);
  std::vector<int64_t> order(f);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t j = 0; j < f; ++j) {
      double s = B[j];
      for (int64_t c = 0; c < d; ++c)
        s += W[j * d + c] * (X[r * d + c] - P[c]);
      pre[j] = s;
    }
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(),
              [&](int64_t a, int64_t b) { return pre[a] != pre[b] ? pre[a] > pre[b] : a < b; });
    OracleRow& o = out[r];
    o.kth = pre[order[k - 1]];
    o.next = k < f ? pre[order[k]] : -1e300;
    for (int64_t i = 0; i < k; ++i) {
      const double v = pre[order[i]];
      o.ids.push_back(v > 0 ? order[i] : -1);
      o.values.push_back(v > 0 ? v : 0.0);
    }
  }
  return out;
}

}  // namespace s3::sae::testing
