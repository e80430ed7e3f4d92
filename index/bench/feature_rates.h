// Synthetic per-feature firing rates for the index and scoring benchmarks (index_bench,
// index_score_bench): shapes of SAE latent frequency histograms, scaled to a mean number of active
// features per token.
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
    for (uint32_t f = 0; f < d_latent; ++f) w[f] = 1.0 / (f + 10.0);
    std::shuffle(w.begin(), w.end(), rng);
  } else if (dist == "lognormal") {
    std::normal_distribution<double> n(0.0, sigma);
    for (double& x : w) x = std::exp(n(rng));
  } else if (dist != "uniform") {
    throw std::invalid_argument("--dist must be lognormal, zipf or uniform");
  }
  std::vector<double> p(d_latent);
  double scale = active / std::accumulate(w.begin(), w.end(), 0.0);
  for (int iter = 0; iter < 30; ++iter) {  // cap, then rescale the rest
    double sum = 0;
    for (size_t f = 0; f < w.size(); ++f) sum += (p[f] = std::min(0.95, w[f] * scale));
    if (std::abs(sum - active) < 1e-6 * active) break;
    scale *= active / sum;
  }
  return p;
}

}  // namespace s3::index::bench
