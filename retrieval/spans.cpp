#include "retrieval/spans.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"

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
  std::vector<double> prefix(n + 1);
  prefix[0] = 0;
  for (size_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + static_cast<double>(in[i]);
  const int64_t h = width / 2;
  const auto sn = static_cast<int64_t>(n);
  const double inv = 1.0 / static_cast<double>(width);
  for (int64_t i = 0; i < sn; ++i) {
    const int64_t lo = std::max<int64_t>(0, i - h);
    const int64_t hi = std::min<int64_t>(sn, i - h + static_cast<int64_t>(width));
    out[static_cast<size_t>(i)] = static_cast<float>((prefix[hi] - prefix[lo]) * inv);
  }
}

namespace {

// Indices i with v[i] > 0, ordered by v[i] descending, ties by lower index: a stable LSD radix
// sort on the inverted float bits (positive floats order like their bit patterns). O(n); a
// comparison sort of 128K positions would take most of the 10 ms budget by itself.
std::vector<uint32_t> positive_order_desc(std::span<const float> v) {
  std::vector<uint32_t> idx, key;
  idx.reserve(v.size());
  key.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] > 0) {  // false for NaN too
      idx.push_back(static_cast<uint32_t>(i));
      key.push_back(~std::bit_cast<uint32_t>(v[i]));
    }
  }
  const size_t m = idx.size();
  std::vector<uint32_t> idx2(m), key2(m);
  for (int shift = 0; shift < 32; shift += 8) {
    size_t count[257] = {};
    for (uint32_t k : key) ++count[((k >> shift) & 0xFF) + 1];
    if (m == 0 || count[((key[0] >> shift) & 0xFF) + 1] == m) continue;  // one digit: no-op pass
    for (int d = 0; d < 256; ++d) count[d + 1] += count[d];
    for (size_t i = 0; i < m; ++i) {
      const size_t dst = count[(key[i] >> shift) & 0xFF]++;
      idx2[dst] = idx[i];
      key2[dst] = key[i];
    }
    idx.swap(idx2);
    key.swap(key2);
  }
  return idx;
}

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

  enum : uint8_t { kSuppressed = 1, kCovered = 2 };
  std::vector<uint8_t> state(n, 0);
  for (uint32_t p : positive_order_desc(smoothed)) {
    if (state[p] != 0) continue;  // near an earlier peak, or inside an earlier span
    const float peak = smoothed[p];
    const double threshold = options.grow_fraction * static_cast<double>(peak);
    auto ok = [&](uint32_t i) {
      return (state[i] & kCovered) == 0 && static_cast<double>(smoothed[i]) >= threshold;
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
    for (uint32_t i = lo; i < hi; ++i) state[i] |= kCovered;
    const uint32_t s_lo = p >= radius ? p - radius : 0;
    const uint32_t s_hi = static_cast<uint32_t>(std::min<uint64_t>(n, uint64_t{p} + radius + 1));
    for (uint32_t i = s_lo; i < s_hi; ++i) state[i] |= kSuppressed;
    spans.push_back({{doc.begin + lo, doc.begin + hi}, doc.begin + p, peak});
  }
  return spans;
}

std::vector<Candidate> find_spans(std::span<const float> scores, TokenRange doc,
                                  const SpanOptions& options) {
  options.validate();
  std::vector<float> smoothed;
  box_smooth(scores, options.smooth_width, smoothed);
  return extract_spans(smoothed, doc, options);
}

}  // namespace s3::retrieval
