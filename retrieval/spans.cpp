#include "retrieval/spans.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "core/base/error.h"

namespace s3::retrieval {

void SpanOptions::validate() const {
  if (smooth_width < 1) throw UsageError("--smooth-width must be >= 1 (got 0)");
  if (!(grow_fraction >= 0 && grow_fraction <= 1)) {
    throw UsageError("--grow-fraction must be in [0, 1] (got " + std::to_string(grow_fraction) +
                     ")");
  }
  if (max_span_tokens < 1) throw UsageError("--max-span must be >= 1 (got 0)");
}

void to_json(nlohmann::json& j, const SpanOptions& o) {
  j = nlohmann::json{{"smooth_width", o.smooth_width},
                     {"grow_fraction", o.grow_fraction},
                     {"max_span", o.max_span_tokens},
                     {"nms_radius", o.effective_nms_radius()}};
}

namespace {

// Per-thread scratch buffers: span extraction reuses them instead of faulting in fresh pages on
// every call (a 128K-token document needs ~3 MiB of them).
struct Scratch {
  std::vector<double> prefix;
  std::vector<float> smoothed;
  std::vector<float> tree;
  std::vector<uint8_t> covered;
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

}  // namespace

void box_smooth(std::span<const float> in, uint32_t width, std::vector<float>& out) {
  if (width < 1) throw UsageError("--smooth-width must be >= 1 (got 0)");
  const size_t n = in.size();
  out.resize(n);
  if (n == 0) return;
  if (width == 1) {
    std::copy(in.begin(), in.end(), out.begin());
    return;
  }
  // prefix[i] = Σ_{j < i} in[j] in double. A window of zeros then differences to exactly 0 and
  // non-negative input never smooths to a negative value (rounding is monotone).
  std::vector<double>& prefix = scratch().prefix;
  prefix.resize(n + 1);
  prefix[0] = 0;
  for (size_t i = 0; i < n; ++i)
    prefix[i + 1] = prefix[i] + static_cast<double>(in[i]);
  // The window of i is [i - h, i - h + w) clipped to [0, n); interior positions need no clipping.
  const int64_t h = width / 2;
  const auto sn = static_cast<int64_t>(n);
  const auto w = static_cast<int64_t>(width);
  const double inv = 1.0 / static_cast<double>(width);
  const int64_t interior_lo = std::min(h, sn);
  const int64_t interior_hi = std::max(interior_lo, sn + h - w + 1);  // last i with i-h+w <= n, +1
  auto edge = [&](int64_t i) {
    const int64_t lo = std::max<int64_t>(0, i - h);
    const int64_t hi = std::min<int64_t>(sn, i - h + w);
    out[static_cast<size_t>(i)] = static_cast<float>((prefix[hi] - prefix[lo]) * inv);
  };
  for (int64_t i = 0; i < interior_lo; ++i)
    edge(i);
  const double* pre = prefix.data();
  float* o = out.data();
  for (int64_t i = interior_lo; i < interior_hi; ++i) {
    o[i] = static_cast<float>((pre[i - h + w] - pre[i - h]) * inv);
  }
  for (int64_t i = interior_hi; i < sn; ++i)
    edge(i);
}

namespace {

// Max segment tree over the candidate peaks: leaf i holds smoothed[i], or -inf once position i
// can no longer be a peak (<= 0, NaN, suppressed or covered). The greedy NMS asks it for the
// leftmost maximum and removes whole ranges at once, so a question costs O(n) to build plus
// O(log n) per peak and removed range, with no sort of all n positions (a comparison sort of 128K
// positions alone costs several milliseconds of the 10 ms budget).
class PeakTree {
 public:
  PeakTree(std::span<const float> v, std::vector<float>& storage) : t_(storage) {
    size_ = 1;
    while (size_ < v.size())
      size_ *= 2;
    t_.resize(2 * size_);
    float* leaf = t_.data() + size_;
    for (size_t i = 0; i < v.size(); ++i)
      leaf[i] = v[i] > 0 ? v[i] : kNone;  // NaN: none too
    std::fill(leaf + v.size(), leaf + size_, kNone);
    for (size_t i = size_ - 1; i >= 1; --i)
      t_[i] = std::max(t_[2 * i], t_[2 * i + 1]);
  }

  bool empty() const { return t_[1] == kNone; }

  // Leftmost position holding the maximum; only when !empty().
  uint32_t argmax() const {
    size_t node = 1;
    while (node < size_)
      node = t_[2 * node] >= t_[2 * node + 1] ? 2 * node : 2 * node + 1;
    return static_cast<uint32_t>(node - size_);
  }

  // Positions [a, b) can no longer be peaks.
  void remove(size_t a, size_t b) { remove(1, 0, size_, a, b); }

 private:
  static constexpr float kNone = -std::numeric_limits<float>::infinity();

  void remove(size_t node, size_t lo, size_t hi, size_t a, size_t b) {
    if (b <= lo || hi <= a || t_[node] == kNone) return;  // a removed subtree stays removed
    if (a <= lo && hi <= b) {
      t_[node] = kNone;
      return;
    }
    const size_t mid = (lo + hi) / 2;
    remove(2 * node, lo, mid, a, b);
    remove(2 * node + 1, mid, hi, a, b);
    t_[node] = std::max(t_[2 * node], t_[2 * node + 1]);
  }

  std::vector<float>& t_;
  size_t size_ = 1;
};

}  // namespace

std::vector<Candidate> extract_spans(std::span<const float> smoothed, TokenRange doc,
                                     const SpanOptions& options) {
  options.validate();
  if (smoothed.size() != doc.size()) {
    throw Error("extract_spans: " + std::to_string(smoothed.size()) + " scores for a document of " +
                std::to_string(doc.size()) + " tokens");
  }
  std::vector<Candidate> spans;
  const uint32_t n = doc.size();
  if (n == 0) return spans;
  const uint32_t radius = options.effective_nms_radius();
  const uint32_t cap = options.max_span_tokens;

  Scratch& s = scratch();
  PeakTree peaks(smoothed, s.tree);
  std::vector<uint8_t>& covered = s.covered;  // 1 = inside an earlier span
  covered.assign(n, 0);
  while (!peaks.empty()) {
    const uint32_t p = peaks.argmax();
    const float peak = smoothed[p];
    const double threshold = options.grow_fraction * static_cast<double>(peak);
    auto ok = [&](uint32_t i) {
      return covered[i] == 0 && static_cast<double>(smoothed[i]) >= threshold;
    };
    uint32_t lo = p, hi = p + 1;  // span [lo, hi)
    while (hi - lo < cap) {
      const bool left = lo > 0 && ok(lo - 1);
      const bool right = hi < n && ok(hi);
      if (left && (!right || smoothed[lo - 1] >= smoothed[hi])) {
        --lo;
      } else if (right) {
        ++hi;
      } else {
        break;
      }
    }
    std::fill(covered.begin() + lo, covered.begin() + hi, uint8_t{1});
    peaks.remove(lo, hi);
    peaks.remove(p >= radius ? p - radius : 0, std::min<uint64_t>(n, uint64_t{p} + radius + 1));
    spans.push_back({{doc.begin + lo, doc.begin + hi}, doc.begin + p, peak});
  }
  return spans;
}

std::vector<Candidate> find_spans(std::span<const float> scores, TokenRange doc,
                                  const SpanOptions& options) {
  options.validate();
  std::vector<float>& smoothed = scratch().smoothed;  // extract_spans does not use this one
  box_smooth(scores, options.smooth_width, smoothed);
  return extract_spans(smoothed, doc, options);
}

}  // namespace s3::retrieval
