#include "core/pipeline/evidence.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "core/base/error.h"
#include "core/pipeline/index_metadata.h"
#include "core/pipeline/question_encoder.h"
#include "core/pipeline/scan.h"
#include "core/runtime/dense_model.h"
#include "index/manifest.h"
#include "index/text_analyzer.h"

namespace s3 {

bool method_needs_sae(retrieval::Method method) {
  return retrieval::method_uses_s3(method);
}

std::string lexical_only_refusal(const std::filesystem::path& index, retrieval::Method method) {
  return "the index " + index.string() + " was built without an SAE (lexical-only): method " +
         std::string(retrieval::method_name(method)) +
         " needs SAE features; use --method bm25, dense or full, or rebuild it with s3attn index "
         "--sae DIR --overwrite";
}

bool method_needs_dense(retrieval::Method method) {
  return retrieval::method_uses_dense(method);
}

QuestionRetrieval retrieve_for_question(const QuestionEncoder* questions,
                                        const index::IndexReader& reader,
                                        const retrieval::PostingSource& postings,
                                        const retrieval::LexicalSource& lexical,
                                        const std::string& question, retrieval::TokenRange doc,
                                        const retrieval::RetrievalOptions& options,
                                        const DenseRetrieval& dense) {
  QuestionRetrieval out;
  const retrieval::Method method = options.method;
  if (method_needs_sae(method)) {
    if (reader.content() == index::IndexContent::kLexicalOnly)
      throw Error(lexical_only_refusal(reader.dir(), method));
    if (!questions)
      throw Error("method " + std::string(retrieval::method_name(method)) + " needs the SAE");
    const auto t = std::chrono::steady_clock::now();
    out.query = questions->encode(question, options.score.aggregation, options.score.question_keys);
    out.encode_query_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }
  std::vector<float> question_vector;
  if (method_needs_dense(method)) {
    if (!dense.encoder || !dense.source)
      throw Error("method " + std::string(retrieval::method_name(method)) +
                  " needs a dense model and dense passage embeddings");
    const auto t = std::chrono::steady_clock::now();
    const std::string_view text = question;
    question_vector = dense.encoder->embed(std::span<const std::string_view>(&text, 1));
    out.embed_question_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }
  // The index's own analyzer (stemmer state is per instance, so one per question).
  out.terms = index::TextAnalyzer(reader.lexical().analyzer_options()).analyze(question);
  // How the scan saw each position (--score-centering context): the chunking recorded in the
  // index's metadata (indexes written before --chunk-overlap existed have none: 0) and where the
  // documents start.
  retrieval::PositionContext positions;
  const ScanRecord scan = read_scan_record(reader.metadata(), reader.layers(), reader.d_latent(),
                                           (reader.dir() / index::kManifestFile).string());
  positions.geometry.chunk = scan.chunk;
  positions.geometry.overlap = scan.overlap;
  positions.geometry.bos = scan.chunk_bos;
  positions.doc_starts = document_starts(reader);
  retrieval::RetrievalInputs in;
  in.doc = doc;
  in.positions = &positions;
  in.postings = &postings;
  in.query = &out.query;
  in.lexical = &lexical;
  in.query_terms = out.terms;
  in.dense = dense.source;
  in.query_vector = question_vector;
  out.result = retrieval::retrieve(in, options);
  return out;
}

std::vector<uint32_t> document_starts(const index::IndexReader& reader) {
  std::vector<uint32_t> starts;
  starts.reserve(reader.n_documents());
  for (uint32_t d = 0; d < reader.n_documents(); ++d)
    starts.push_back(reader.document(d).token_begin);
  return starts;
}

std::string evidence_context(const index::IndexReader& reader,
                             std::span<const retrieval::SelectedRange> ranges,
                             const retrieval::ContextOptions& options, bool per_document) {
  const auto text = [&](retrieval::TokenRange r) {
    return std::string(reader.text_of(r.begin, r.end));
  };
  if (!per_document) return retrieval::assemble_context(ranges, text, options);
  const std::vector<uint32_t> starts = document_starts(reader);
  retrieval::DocumentBoundaries documents{
      starts, [&](uint32_t d) { return std::string(reader.document(d).name); }};
  return retrieval::assemble_context(ranges, text, options, documents);
}

retrieval::Selection fit_selection(const retrieval::RetrievalResult& retrieved,
                                   retrieval::Method method, retrieval::TokenRange doc,
                                   retrieval::BudgetOptions options, uint32_t max_index_budget,
                                   uint32_t answer_budget, const EvidenceMeasure& measure) {
  const std::vector<retrieval::Candidate> passages =
      retrieval::passages_to_candidates(retrieved.passages);
  const std::vector<retrieval::Candidate> dense =
      retrieval::passages_to_candidates(retrieved.dense_passages);
  retrieval::Selection selection = retrieved.selection;  // packed with options.budget
  const uint32_t max_budget = std::max(max_index_budget, options.budget);
  std::optional<retrieval::Selection> best;
  uint32_t feasible = 0;                 // largest index budget known to fit
  uint32_t infeasible = max_budget + 1;  // smallest index budget known not to
  EvidenceCost cost;
  // Each step rescales the budget by what was measured (a secant step), bracketed by the budgets
  // known to fit and not to; a handful of steps settle it.
  for (int step = 0; step < 12; ++step) {
    const uint32_t budget = options.budget;
    cost = measure(selection);
    const bool fits = cost.answer_tokens <= answer_budget && cost.window_over <= 0;
    uint64_t next = budget;
    if (fits) {
      best = selection;
      feasible = budget;
      // Full, or the document is exhausted: nothing more would fit or nothing more exists.
      if (cost.answer_tokens >= answer_budget || selection.n_tokens < budget ||
          budget == max_budget)
        break;
      next = std::max<uint64_t>(budget + 1, static_cast<uint64_t>(budget) * answer_budget /
                                                std::max<size_t>(cost.answer_tokens, 1));
    } else {
      infeasible = budget;
      if (cost.answer_tokens > answer_budget)
        next = static_cast<uint64_t>(budget) * answer_budget / cost.answer_tokens;
      if (cost.window_over > 0)
        next = std::min<uint64_t>(
            next, budget > cost.window_over ? budget - static_cast<uint64_t>(cost.window_over) : 0);
      next = std::min<uint64_t>(next, budget - 1);
    }
    next = std::clamp<uint64_t>(next, feasible + 1, infeasible - 1);
    if (next <= feasible || next >= infeasible || next == budget) break;
    options.budget = static_cast<uint32_t>(next);
    selection = retrieval::select_ranges(
        method, doc, retrieval::CandidateSets{retrieved.s3_spans, passages, dense}, options);
  }
  if (!best)
    throw Error("the evidence does not fit: " + std::to_string(cost.answer_tokens) +
                " evidence tokens for a budget of " + std::to_string(answer_budget) +
                ", the prompt " + std::to_string(std::max<int64_t>(cost.window_over, 0)) +
                " tokens over the model's window; lower --budget or --max-new-tokens");
  return *best;
}

size_t count_evidence_tokens(const index::IndexReader& reader,
                             std::span<const retrieval::SelectedRange> ranges,
                             const Tokenizer& tokenizer) {
  size_t tokens = 0;
  const std::vector<retrieval::SelectedRange> cut =
      retrieval::split_at_documents(ranges, document_starts(reader));
  for (size_t i = 0; i < cut.size();) {
    retrieval::TokenRange run = cut[i].range;
    size_t j = i + 1;
    while (j < cut.size() && cut[j].range.begin == run.end &&
           reader.document_at(cut[j].range.begin) == reader.document_at(run.begin)) {
      run.end = cut[j].range.end;
      ++j;
    }
    if (!run.empty()) tokens += tokenizer.encode(reader.text_of(run.begin, run.end)).size();
    i = j;
  }
  return tokens;
}

}  // namespace s3
