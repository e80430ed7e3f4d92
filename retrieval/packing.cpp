#include "retrieval/packing.h"

#include <algorithm>
#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

#include "core/base/error.h"

namespace s3::retrieval {

std::string_view source_name(Source s) {
  switch (s) {
    case Source::kS3:
      return "s3";
    case Source::kBm25:
      return "bm25";
    case Source::kLead:
      return "lead";
    case Source::kTail:
      return "tail";
    case Source::kDense:
      return "dense";
  }
  return "?";
}

std::string_view method_name(Method m) {
  switch (m) {
    case Method::kS3:
      return "s3";
    case Method::kBm25:
      return "bm25";
    case Method::kS3Hybrid:
      return "s3-hybrid";
    case Method::kFull:
      return "full";
    case Method::kDense:
      return "dense";
    case Method::kS3Dense:
      return "s3-dense";
  }
  return "?";
}

Method parse_method(std::string_view name) {
  for (Method m : {Method::kS3, Method::kBm25, Method::kS3Hybrid, Method::kFull, Method::kDense,
                   Method::kS3Dense}) {
    if (name == method_name(m)) return m;
  }
  throw UsageError("--method must be s3, bm25, s3-hybrid, full, dense or s3-dense (got '" +
                   std::string(name) + "')");
}

bool method_uses_s3(Method m) {
  return m == Method::kS3 || m == Method::kS3Hybrid || m == Method::kS3Dense;
}
bool method_uses_bm25(Method m) {
  return m == Method::kBm25 || m == Method::kS3Hybrid;
}
bool method_uses_dense(Method m) {
  return m == Method::kDense || m == Method::kS3Dense;
}

void BudgetOptions::validate() const {
  if (budget < 1) throw UsageError("--budget must be >= 1 token (got 0)");
  if (!(bm25_share >= 0 && bm25_share <= 1)) {
    throw UsageError("--bm25-share must be in [0, 1] (got " + std::to_string(bm25_share) + ")");
  }
  if (!(lead_tail_max_share >= 0 && lead_tail_max_share <= 1)) {
    throw UsageError("--lead-tail-max-share must be in [0, 1] (got " +
                     std::to_string(lead_tail_max_share) + ")");
  }
}

void to_json(nlohmann::json& j, const BudgetOptions& o) {
  j = nlohmann::json{{"budget", o.budget},
                     {"lead", o.lead_tokens},
                     {"tail", o.tail_tokens},
                     {"bm25_share", o.bm25_share},
                     {"lead_tail_max_share", o.lead_tail_max_share}};
}

void to_json(nlohmann::json& j, const Selection& s) {
  nlohmann::json ranges = nlohmann::json::array();
  for (const SelectedRange& r : s.ranges) {
    ranges.push_back({{"start", r.range.begin},
                      {"end", r.range.end},
                      {"source", source_name(r.source)},
                      {"score", r.score}});
  }
  nlohmann::json by_source = nlohmann::json::object();
  for (Source src : {Source::kS3, Source::kBm25, Source::kLead, Source::kTail, Source::kDense}) {
    by_source[std::string(source_name(src))] = s.tokens_by_source[static_cast<size_t>(src)];
  }
  j = nlohmann::json{{"n_tokens", s.n_tokens}, {"tokens_by_source", by_source}, {"ranges", ranges}};
}

TokenRange lead_range(TokenRange doc, uint32_t n) {
  return {doc.begin, doc.begin + std::min(n, doc.size())};
}

TokenRange tail_range(TokenRange doc, uint32_t n) {
  return {doc.end - std::min(n, doc.size()), doc.end};
}

Selection select_full(TokenRange doc, uint32_t max_tokens) {
  if (max_tokens < 1) throw UsageError("--budget must be >= 1 token (got 0)");
  Selection s;
  if (doc.empty()) return s;
  const auto add = [&](TokenRange r, Source src) {
    if (r.empty()) return;
    s.ranges.push_back({r, src, 0.0f});
    s.n_tokens += r.size();
    s.tokens_by_source[static_cast<size_t>(src)] += r.size();
  };
  if (doc.size() <= max_tokens) {
    add(doc, Source::kLead);
  } else {
    const uint32_t last = max_tokens / 2;
    add(lead_range(doc, max_tokens - last), Source::kLead);
    add(tail_range(doc, last), Source::kTail);
  }
  return s;
}

namespace {

// The union of claimed positions over one document, with who claimed each.
class Packer {
 public:
  Packer(TokenRange doc, uint32_t target) : doc_(doc), target_(target), owner_(doc.size(), -1) {}

  uint32_t remaining() const { return target_ - used_; }

  struct Added {
    uint32_t tokens;  // positions newly claimed
    bool complete;    // no unclaimed position of the candidate is left
  };

  // Claims the unclaimed positions of `r` (clipped to the document), at most `limit` of them
  // (and never past the target). If more are unclaimed than allowed, the claimed ones are those
  // of the window grown around `anchor` one position at a time, alternately left and right.
  Added add(TokenRange r, uint32_t anchor, uint32_t limit, Source source, float score) {
    r.begin = std::max(r.begin, doc_.begin);
    r.end = std::min(r.end, doc_.end);
    if (r.empty()) return {0, true};
    const uint32_t lo = r.begin - doc_.begin, hi = r.end - doc_.begin;
    uint32_t free = 0;
    for (uint32_t i = lo; i < hi; ++i)
      free += owner_[i] < 0;
    if (free == 0) return {0, true};
    limit = std::min(limit, remaining());
    if (limit == 0) return {0, false};
    const auto id = static_cast<int32_t>(claims_.size());
    claims_.push_back({source, score});
    if (free <= limit) {
      for (uint32_t i = lo; i < hi; ++i) {
        if (owner_[i] < 0) owner_[i] = id;
      }
      used_ += free;
      return {free, true};
    }
    uint32_t got = 0;
    const auto take = [&](uint32_t i) {
      if (owner_[i] < 0) {
        owner_[i] = id;
        ++got;
      }
    };
    const uint32_t a = std::clamp(anchor, r.begin, r.end - 1) - doc_.begin;
    uint32_t wl = a, wr = a + 1;  // window [wl, wr)
    take(a);
    bool left_turn = true;
    while (got < limit) {  // free > limit, so an unclaimed position is left outside the window
      const bool can_left = wl > lo, can_right = wr < hi;
      if ((left_turn && can_left) || !can_right) {
        take(--wl);
      } else {
        take(wr++);
      }
      left_turn = !left_turn;
    }
    used_ += got;
    return {got, false};
  }

  // Step 5 of packing.h: lead and tail grow, alternately one unclaimed position each.
  void grow_lead_tail() {
    if (remaining() == 0) return;
    const auto n = static_cast<uint32_t>(owner_.size());
    const auto lead = static_cast<int32_t>(claims_.size());
    claims_.push_back({Source::kLead, 0.0f});
    const auto tail = static_cast<int32_t>(claims_.size());
    claims_.push_back({Source::kTail, 0.0f});
    uint32_t front = 0, back = n;  // every position < front and >= back is claimed
    bool lead_turn = true;
    while (remaining() > 0) {  // target <= n, so an unclaimed position exists
      if (lead_turn) {
        while (owner_[front] >= 0)
          ++front;
        owner_[front] = lead;
      } else {
        while (owner_[back - 1] >= 0)
          --back;
        owner_[back - 1] = tail;
      }
      ++used_;
      lead_turn = !lead_turn;
    }
  }

  Selection finish() const {
    Selection s;
    for (uint32_t i = 0; i < owner_.size(); ++i) {
      if (owner_[i] < 0) continue;
      const Claim& c = claims_[static_cast<size_t>(owner_[i])];
      const uint32_t t = doc_.begin + i;
      if (!s.ranges.empty() && s.ranges.back().range.end == t &&
          s.ranges.back().source == c.source) {
        s.ranges.back().range.end = t + 1;
        s.ranges.back().score = std::max(s.ranges.back().score, c.score);
      } else {
        s.ranges.push_back({{t, t + 1}, c.source, c.score});
      }
      ++s.n_tokens;
      ++s.tokens_by_source[static_cast<size_t>(c.source)];
    }
    return s;
  }

 private:
  struct Claim {
    Source source;
    float score;
  };
  TokenRange doc_;
  uint32_t target_;
  uint32_t used_ = 0;
  std::vector<int32_t> owner_;  // per document position: index into claims_, or -1
  std::vector<Claim> claims_;
};

// One source's candidates, best first, and how far packing has got through them.
class Stream {
 public:
  Stream(std::span<const Candidate> candidates, Source source) : source_(source) {
    for (const Candidate& c : candidates) {
      if (!c.range.empty() && std::isfinite(c.score)) ranked_.push_back(c);
    }
    std::stable_sort(ranked_.begin(), ranked_.end(), [](const Candidate& a, const Candidate& b) {
      if (a.score != b.score) return a.score > b.score;
      return a.range.begin < b.range.begin;
    });
  }

  // Adds candidates in rank order until `quota` new positions were added or none is left. A
  // candidate cut short stays current, so a later call continues it.
  uint32_t fill(Packer& packer, uint32_t quota) {
    uint32_t added = 0;
    while (added < quota && next_ < ranked_.size() && packer.remaining() > 0) {
      const Candidate& c = ranked_[next_];
      const Packer::Added a = packer.add(c.range, c.anchor, quota - added, source_, c.score);
      added += a.tokens;
      if (!a.complete) break;
      ++next_;
    }
    return added;
  }

 private:
  Source source_;
  std::vector<Candidate> ranked_;
  size_t next_ = 0;
};

}  // namespace

Selection select_ranges(Method method, TokenRange doc, std::span<const Candidate> s3_spans,
                        std::span<const Candidate> bm25_passages, const BudgetOptions& options) {
  return select_ranges(method, doc, CandidateSets{s3_spans, bm25_passages, {}}, options);
}

Selection select_ranges(Method method, TokenRange doc, const CandidateSets& candidates,
                        const BudgetOptions& options) {
  options.validate();
  if (method == Method::kFull) return select_full(doc, options.budget);
  const uint32_t target = std::min(options.budget, doc.size());
  Packer packer(doc, target);
  Stream s3(method_uses_s3(method) ? candidates.s3 : std::span<const Candidate>{}, Source::kS3);
  // The passage source: BM25's, or the dense one's (which takes BM25's place in the hybrid).
  const bool dense = method_uses_dense(method);
  Stream passages(dense                      ? candidates.dense
                  : method_uses_bm25(method) ? candidates.bm25
                                             : std::span<const Candidate>{},
                  dense ? Source::kDense : Source::kBm25);

  if (method == Method::kS3Hybrid || method == Method::kS3Dense) {
    const uint64_t asked = uint64_t{options.lead_tokens} + options.tail_tokens;
    const auto cap = static_cast<uint64_t>(std::floor(options.lead_tail_max_share * target));
    const uint64_t total = std::min(asked, cap);
    const auto lead = static_cast<uint32_t>(asked ? options.lead_tokens * total / asked : 0);
    const auto tail = static_cast<uint32_t>(total - lead);
    packer.add(lead_range(doc, lead), doc.begin, lead, Source::kLead, 0.0f);
    if (!doc.empty()) packer.add(tail_range(doc, tail), doc.end - 1, tail, Source::kTail, 0.0f);
    passages.fill(packer, static_cast<uint32_t>(std::floor(options.bm25_share * target)));
  }
  // The rest to S3, then whatever S3 could not use to the passages, until both are exhausted.
  while (packer.remaining() > 0) {
    const uint32_t a = s3.fill(packer, packer.remaining());
    const uint32_t b = passages.fill(packer, packer.remaining());
    if (a == 0 && b == 0) break;
  }
  packer.grow_lead_tail();
  Selection s = packer.finish();
  if (s.n_tokens != target) {
    throw Error("internal: packed " + std::to_string(s.n_tokens) + " tokens for a target of " +
                std::to_string(target));
  }
  return s;
}

}  // namespace s3::retrieval
