// From position scores to spans (docs/method.md §5): box smoothing, greedy non-maximum suppression,
// growth of each peak while the smoothed score stays >= a fraction of the peak, a length cap.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "retrieval/types.h"

namespace s3::retrieval {

struct SpanOptions {
  // --smooth-width: box kernel width in tokens (>= 1; 1 = none). Default 32 (docs/method.md §5).
  uint32_t smooth_width = 32;
  // --grow-fraction: a span grows while smoothed >= fraction × peak. In [0, 1]. Default 0.5.
  double grow_fraction = 0.5;
  // --max-span: span length cap in tokens (>= 1). Default 256.
  uint32_t max_span_tokens = 256;
  // --nms-radius: no two peaks closer than this (positions). Default max_span_tokens / 2: two
  // peaks' centred spans of full length then just touch instead of covering the same tokens.
  std::optional<uint32_t> nms_radius;

  uint32_t effective_nms_radius() const { return nms_radius.value_or(max_span_tokens / 2); }
  void validate() const;  // throws s3::UsageError naming the flag
};
void to_json(nlohmann::json& j, const SpanOptions& o);  // records the effective radius

// out[i] = (1/w) · Σ_{j = i - w/2}^{i - w/2 + w - 1} in[j], with in[j] = 0 outside [0, n) (zero
// padding, like numpy.convolve(mode="same") with a box of ones/w). O(n) with a double prefix sum.
void box_smooth(std::span<const float> in, uint32_t width, std::vector<float>& out);

// Greedy NMS + growth over `smoothed` (one value per position of `doc`, index i is position
// doc.begin + i). Peaks are visited by smoothed value descending, ties by lower position; a
// position is a peak if its value is > 0, it is not within nms_radius of an earlier peak and not
// inside an earlier span. A peak grows one token at a time towards the higher-valued neighbour
// (ties: left) while that neighbour is >= grow_fraction × peak, inside the document, not in an
// earlier span, and the span is shorter than max_span_tokens. Spans therefore never overlap.
// Result: spans as Candidates (anchor = peak, score = smoothed peak value), in visiting order
// (score descending, ties lower peak first), global positions.
std::vector<Candidate> extract_spans(std::span<const float> smoothed, TokenRange doc,
                                     const SpanOptions& options);

// box_smooth with options.smooth_width, then extract_spans.
std::vector<Candidate> find_spans(std::span<const float> scores, TokenRange doc,
                                  const SpanOptions& options);

}  // namespace s3::retrieval
