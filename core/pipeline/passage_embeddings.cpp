#include "core/pipeline/passage_embeddings.h"

#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "core/pipeline/index_metadata.h"
#include "index/passage_splitter.h"

namespace s3 {

void add_dense_metadata(nlohmann::json& metadata, const DenseEncoder& encoder) {
  set_dense_model(metadata, encoder.info().identity(), encoder.info().dir.string());
}

DenseStats embed_passages(const DenseEncoder& encoder, index::IndexWriter& writer,
                          uint32_t first_doc, std::span<const Document> documents) {
  const uint32_t dim = writer.options().dense_dim;
  if (dim != static_cast<uint32_t>(encoder.info().dim))
    throw Error("internal: the index writer expects dense vectors of " + std::to_string(dim) +
                " values, the model makes " + std::to_string(encoder.info().dim));
  const uint32_t target_words = writer.options().lexical.target_words;
  // Passages of several documents go through the encoder together (its batches are sorted by
  // length), a few thousand at a time to bound host memory.
  constexpr size_t kPassagesPerRound = 4096;
  DenseStats stats;
  size_t next = 0;
  while (next < documents.size()) {
    std::vector<std::string_view> texts;
    std::vector<size_t> counts;  // passages per document of this round
    const size_t first = next;
    while (next < documents.size() && (texts.empty() || texts.size() < kPassagesPerRound)) {
      const std::string_view text = documents[next].text;
      const auto spans = index::document_passages(text, target_words);
      for (const index::PassageSpan& p : spans)
        texts.push_back(text.substr(p.byte_begin, p.byte_end - p.byte_begin));
      counts.push_back(spans.size());
      ++next;
    }
    const std::vector<float> vectors = encoder.embed(texts, &stats);
    size_t row = 0;
    for (size_t i = 0; i < counts.size(); ++i) {
      const std::span<const float> rows(vectors.data() + row * dim, counts[i] * dim);
      writer.add_dense_vectors(first_doc + static_cast<uint32_t>(first + i), rows);
      row += counts[i];
    }
  }
  return stats;
}

}  // namespace s3
