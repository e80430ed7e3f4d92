// From a question to selected evidence over an opened index: the question's SAE features (when the
// method reads them) and analyzed terms, retrieval (retrieval/pipeline.h), and the exact text of
// the selection. Shared by `ask` and `longbench`. Free of LibTorch.
#pragma once

#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/tokenizer/tokenizer.h"
#include "index/index_reader.h"
#include "retrieval/pipeline.h"

namespace s3 {

class QuestionEncoder;
class DenseEncoder;

// Does a method read SAE features (and so need the SAE and a QuestionEncoder)?
bool method_needs_sae(retrieval::Method method);
// The one-line refusal of an SAE method on a lexical-only index (built without an SAE).
std::string lexical_only_refusal(const std::filesystem::path& index, retrieval::Method method);
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

// `questions` may be null for methods that read no SAE features, `dense` empty for methods that
// read no embeddings.
QuestionRetrieval retrieve_for_question(const QuestionEncoder* questions,
                                        const index::IndexReader& reader,
                                        const retrieval::PostingSource& postings,
                                        const retrieval::LexicalSource& lexical,
                                        const std::string& question, retrieval::TokenRange doc,
                                        const retrieval::RetrievalOptions& options,
                                        const DenseRetrieval& dense = {});

// Global first positions of the index's documents, ascending.
std::vector<uint32_t> document_starts(const index::IndexReader& reader);

// The ranges' exact original text joined by the context separator. With `per_document` (evidence
// searched over several documents) each document's ranges come under a header naming it
// (retrieval::assemble_context); without, the ranges must lie in one document.
std::string evidence_context(const index::IndexReader& reader,
                             std::span<const retrieval::SelectedRange> ranges,
                             const retrieval::ContextOptions& options, bool per_document = false);

// What the model that reads the evidence makes of a selection: its evidence in that model's tokens,
// and how far its prompt plus the answer overflow that model's window (<= 0: it fits).
struct EvidenceCost {
  size_t answer_tokens = 0;
  int64_t window_over = 0;
};
using EvidenceMeasure = std::function<EvidenceCost(const retrieval::Selection&)>;

// The selection to hand the answering model: the retrieval's own candidates (`retrieved`, packed
// with options.budget) repacked by retrieval::select_ranges (scoring is not repeated) with the
// largest index-token budget, at most `max_index_budget`, whose evidence holds at most
// `answer_budget` answering-model tokens and whose prompt fits the window. Separators, document
// headers and a different answering tokenizer make the two counts differ; a few repackings find
// the budget. Throws s3::Error when even one token of evidence does not fit.
retrieval::Selection fit_selection(const retrieval::RetrievalResult& retrieved,
                                   retrieval::Method method, retrieval::TokenRange doc,
                                   retrieval::BudgetOptions options, uint32_t max_index_budget,
                                   uint32_t answer_budget, const EvidenceMeasure& measure);

// Tokens of the evidence's text under `tokenizer` (each run of touching ranges of one document
// counted as one text; separators and headers not counted).
size_t count_evidence_tokens(const index::IndexReader& reader,
                             std::span<const retrieval::SelectedRange> ranges,
                             const Tokenizer& tokenizer);

}  // namespace s3
