// Dense retrieval: passages ranked by the cosine similarity of their embedding with the question's
// (docs/retrieval.md, "Dense retrieval"). The embeddings come from outside (the index's dense.bin,
// the caller's sentence encoder); this is only the ranking.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "retrieval/bm25.h"
#include "retrieval/sources.h"
#include "retrieval/types.h"

namespace s3::retrieval {

struct DenseOptions {
  // --dense-max-passages: keep only the N most similar passages; 0 = all (the packer takes what its
  // budget allows).
  uint32_t max_passages = 0;

  void validate() const {}  // every value is valid
};
void to_json(nlohmann::json& j, const DenseOptions& o);

// Every passage (overlapping `within` when given) with score = cos(query, passage vector), best
// first; ties: earlier range, then lower passage id. Throws s3::Error when the query's size is not
// the source's dim or the query is zero.
std::vector<ScoredPassage> dense_search(const DenseSource& source, std::span<const float> query,
                                        const DenseOptions& options,
                                        std::optional<TokenRange> within = std::nullopt);

}  // namespace s3::retrieval
