// Synthetic per-feature firing rates for the index and scoring benchmarks (index_bench,
// merge_bench, index_score_bench): shapes of SAE latent frequency histograms, scaled to a mean
// number of active features per token; and feature-major bitmaps drawn from them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace s3::index::bench {

// Rates r_f for `d_latent` features with sum `active`, each capped at 0.95 (the rest rescaled).
// dist: "uniform" (all equal), "lognormal" (ln r ~ N(mu, sigma)) or "zipf" (r ∝ 1 / (rank + 10),
// ranks shuffled). Throws std::invalid_argument for another dist.
inline std::vector<double> feature_rates(const std::string& dist, uint32_t d_latent, double active,
                                         double sigma, std::mt19937_64& rng) {
  std::vector<double> w(d_latent, 1.0);
  if (dist == "zipf") {
    for (uint32_t f = 0; f < d_latent; ++f)
      w[f] = 1.0 / (f + 10.0);
    std::shuffle(w.begin(), w.end(), rng);
  } else if (dist == "lognormal") {
    std::normal_distribution<double> n(0.0, sigma);
    for (double& x : w)
      x = std::exp(n(rng));
  } else if (dist != "uniform") {
    throw std::invalid_argument("--dist must be lognormal, zipf or uniform");
  }
  std::vector<double> p(d_latent);
  double scale = active / std::accumulate(w.begin(), w.end(), 0.0);
  for (int iter = 0; iter < 30; ++iter) {  // cap, then rescale the rest
    double sum = 0;
    for (size_t f = 0; f < w.size(); ++f)
      sum += (p[f] = std::min(0.95, w[f] * scale));
    if (std::abs(sum - active) < 1e-6 * active) break;
    scale *= active / sum;
  }
  return p;
}

// One chunk's feature-major bitmap, bits[f * words + t / 64] with words = ceil(n_tokens / 64):
// feature f is active at a token with probability rates[f], in runs of mean length `run` of
// consecutive tokens (1 = independent tokens) separated by geometric gaps.
inline std::vector<uint64_t> feature_bitmap(const std::vector<double>& rates, uint32_t n_tokens,
                                            double run, std::mt19937_64& rng) {
  const size_t words = (n_tokens + 63) / 64;
  std::vector<uint64_t> bits(rates.size() * words, 0);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (size_t f = 0; f < rates.size(); ++f) {
    const double p = rates[f];
    if (p <= 0) continue;
    const double on = std::max(1.0, std::min(run, 0.5 / (1.0 - p)));  // mean on-run length
    const double off = on * (1.0 - p) / p;                            // mean off-gap length
    uint64_t* row = bits.data() + f * words;
    auto geometric = [&](double mean) {  // >= 0 with the given mean
      if (mean <= 0) return uint64_t{0};
      double q = 1.0 / (1.0 + mean);
      return static_cast<uint64_t>(std::floor(std::log(1.0 - u(rng)) / std::log(1.0 - q)));
    };
    uint64_t t = geometric(off);
    while (t < n_tokens) {
      uint64_t len = 1 + geometric(on - 1);
      for (uint64_t i = 0; i < len && t < n_tokens; ++i, ++t)
        row[t / 64] |= uint64_t{1} << (t % 64);
      t += 1 + geometric(off - 1 > 0 ? off - 1 : 0);
    }
  }
  return bits;
}

}  // namespace s3::index::bench
