// From a question to selected evidence over an opened index: the question's SAE features (when the
// method reads them) and analyzed terms, retrieval (retrieval/pipeline.h), and the exact text of the
// selection. Shared by `ask` and `longbench`. Free of LibTorch.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "index/index_reader.h"
#include "retrieval/pipeline.h"

namespace s3 {

class Scanner;
class DenseEncoder;

// Does a method read SAE features (and so need the SAE and a Scanner)?
bool method_needs_sae(retrieval::Method method);
// Does a method rank passages by embedding (and so need a DenseEncoder and dense.bin)?
bool method_needs_dense(retrieval::Method method);

// The dense side of retrieval (methods dense and s3-dense): the encoder that embeds the question
// and the index's passage vectors.
struct DenseRetrieval {
  const DenseEncoder* encoder = nullptr;
  const retrieval::DenseSource* source = nullptr;
};

struct QuestionRetrieval {
  retrieval::QueryFeatures query;  // per layer slot (empty when the method reads no SAE features)
  std::vector<std::string> terms;  // the question analyzed by the index's own analyzer
  retrieval::RetrievalResult result;
  double encode_query_s = 0;
  double embed_question_s = 0;  // the question's dense embedding (dense methods)
};

// `scanner` may be null for methods that read no SAE features, `dense` empty for methods that
// read no embeddings.
QuestionRetrieval retrieve_for_question(const Scanner* scanner, const index::IndexReader& reader,
                                        const retrieval::PostingSource& postings,
                                        const retrieval::LexicalSource& lexical, const std::string& question,
                                        retrieval::TokenRange doc, const retrieval::RetrievalOptions& options,
                                        const DenseRetrieval& dense = {});

// The ranges' exact original text joined by the context separator (ranges within one document).
std::string evidence_context(const index::IndexReader& reader, std::span<const retrieval::SelectedRange> ranges,
                             const retrieval::ContextOptions& options);

}  // namespace s3
