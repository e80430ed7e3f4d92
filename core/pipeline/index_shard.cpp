#include "core/pipeline/index_shard.h"

#include <xxhash.h>

#include <algorithm>
#include <cstdio>

#include "core/base/error.h"

namespace s3 {

namespace {

std::string input_fingerprint(std::span<const Document> documents) {
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  for (const Document& d : documents) {
    // Lengths first, so that moving bytes between a name and a text changes the hash.
    const uint64_t sizes[2] = {d.name.size(), d.text.size()};
    XXH3_64bits_update(state, sizes, sizeof sizes);
    XXH3_64bits_update(state, d.name.data(), d.name.size());
    XXH3_64bits_update(state, d.text.data(), d.text.size());
  }
  const XXH64_hash_t h = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

}  // namespace

IndexShard::IndexShard(std::span<const Document> documents, int rank, int world)
    : rank_(rank), world_(world) {
  if (world < 1 || rank < 0 || rank >= world)
    throw UsageError("rank " + std::to_string(rank) + " of " + std::to_string(world) +
                     " is not a valid shard");
  if (documents.empty()) throw Error("no documents to index");
  bases_.reserve(documents.size() + 1);
  bases_.push_back(0);
  for (const Document& d : documents) {
    if (d.text.empty()) throw Error("document " + d.name + " is empty");
    bases_.push_back(bases_.back() + d.text.size());
  }
  // Ranks and world sizes are below 2^20 (LaunchEnvironment) and inputs below 2^44 bytes: no
  // overflow.
  const uint64_t total = bases_.back();
  lo_ = total * static_cast<uint64_t>(rank) / static_cast<uint64_t>(world);
  hi_ = total * static_cast<uint64_t>(rank + 1) / static_cast<uint64_t>(world);
  // The document holding byte b: the last one starting at or before it.
  auto holding = [&](uint64_t b) {
    return static_cast<size_t>(std::upper_bound(bases_.begin(), bases_.end(), b) - bases_.begin()) -
           1;
  };
  first_doc_ = holding(lo_);
  end_doc_ = holding(std::max(hi_, lo_ + 1) - 1) + 1;
  fingerprint_ = input_fingerprint(documents);
}

IndexShard::Chunks IndexShard::chunks(size_t d, std::span<const index::TokenOffset> offsets,
                                      int64_t chunk) const {
  const auto n = static_cast<int64_t>(offsets.size());
  const int64_t n_chunks = (n + chunk - 1) / chunk;
  const uint64_t base = bases_[d], last_byte = bases_[d + 1] - bases_[d] - 1;
  // The byte that places chunk c; non-decreasing in c because token starts are.
  auto key = [&](int64_t c) {
    return base + std::min<uint64_t>(offsets[static_cast<size_t>(c * chunk)].begin, last_byte);
  };
  Chunks out;
  while (out.first < n_chunks && key(out.first) < lo_)
    ++out.first;
  out.end = out.first;
  while (out.end < n_chunks && key(out.end) < hi_)
    ++out.end;
  return out;
}

index::PartRecord IndexShard::part_record() const {
  index::PartRecord r;
  r.rank = static_cast<uint32_t>(rank_);
  r.world = static_cast<uint32_t>(world_);
  r.input_documents = bases_.size() - 1;
  r.input_bytes = bases_.back();
  r.input_xxh3_64 = fingerprint_;
  return r;
}

}  // namespace s3
