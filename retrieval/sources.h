// The read-only views of an index that retrieval/ needs. retrieval/ never includes index/
// headers: the caller adapts its index reader to these interfaces (a thin wrapper), and tests use
// in-memory implementations. Their methods are const and must be safe to call concurrently:
// score_positions with ScoreOptions::threads > 1 reads postings of several layer slots at once.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "retrieval/types.h"

namespace s3::retrieval {

// SAE feature postings of the tapped layers. `layer` is the layer SLOT (0 .. n_layers()-1, the
// index's order of tapped layers), not the model's layer number.
class PostingSource {
 public:
  virtual ~PostingSource() = default;

  // Number of tapped layer slots.
  virtual int n_layers() const = 0;
  // Tokens the df values count over (the denominator of the stop-feature fraction).
  virtual uint64_t n_tokens() const = 0;
  // df_l(f): length of the posting list of feature f at layer slot l (0 if f never fired).
  virtual uint32_t df(int layer, uint32_t feature) const = 0;
  // Replaces `out` with the positions where f fired at layer slot l: global token positions,
  // strictly increasing. `hint` is the range the caller will read; a source may skip blocks outside
  // it but need not (the caller ignores positions outside it). `out` keeps its capacity between
  // calls, so a source decoding into it allocates nothing in steady state.
  virtual void postings(int layer, uint32_t feature, TokenRange hint,
                        std::vector<uint32_t>& out) const = 0;
  // Adds `weight` to acc[p - range.begin] for every position p of the list inside `range` (acc
  // covers it), in list order. The default goes through postings() with `buf` as the buffer; a
  // source may decode and add in one pass.
  virtual void add_postings(int layer, uint32_t feature, TokenRange range, float weight, float* acc,
                            std::vector<uint32_t>& buf) const;
};

// The lexical (BM25) index over passages. Passage lengths and the average are in ANALYZED terms
// (the index's analyzer: lowercase, stemming, ...), the unit the term frequencies count in.
class LexicalSource {
 public:
  virtual ~LexicalSource() = default;

  // N: passages in the collection the statistics describe.
  virtual uint32_t n_passages() const = 0;
  // avgdl: mean passage length in analyzed terms (> 0 when n_passages() > 0).
  virtual double avg_passage_length() const = 0;
  // dl: length of passage p in analyzed terms.
  virtual uint32_t passage_length(uint32_t p) const = 0;
  // [tb, te): the global token positions passage p covers.
  virtual TokenRange passage_tokens(uint32_t p) const = 0;
  // Replaces `passages` with the ids of the passages containing `term` (strictly increasing) and
  // `tfs` with its frequency in each (same length, each >= 1). Unknown term: both left empty.
  virtual void term_postings(std::string_view term, std::vector<uint32_t>& passages,
                             std::vector<uint32_t>& tfs) const = 0;
};

// Dense passage embeddings: one vector per passage of the lexical index (same ids), computed at
// index time by a sentence encoder and normalised to unit length (up to storage rounding).
class DenseSource {
 public:
  virtual ~DenseSource() = default;

  virtual uint32_t n_passages() const = 0;
  virtual uint32_t dim() const = 0;
  // [tb, te): the global token positions passage p covers.
  virtual TokenRange passage_tokens(uint32_t p) const = 0;
  // Writes passage p's vector to `out` (dim() values).
  virtual void passage_vector(uint32_t p, std::span<float> out) const = 0;
};

}  // namespace s3::retrieval
