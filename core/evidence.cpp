#include "core/evidence.h"

#include <chrono>

#include "core/dense_model.h"
#include "core/error.h"
#include "core/scan.h"
#include "index/text_analyzer.h"

namespace s3 {

bool method_needs_sae(retrieval::Method method) { return retrieval::method_uses_s3(method); }

bool method_needs_dense(retrieval::Method method) { return retrieval::method_uses_dense(method); }

QuestionRetrieval retrieve_for_question(const Scanner* scanner, const index::IndexReader& reader,
                                        const retrieval::PostingSource& postings,
                                        const retrieval::LexicalSource& lexical, const std::string& question,
                                        retrieval::TokenRange doc, const retrieval::RetrievalOptions& options,
                                        const DenseRetrieval& dense) {
  QuestionRetrieval out;
  const retrieval::Method method = options.method;
  if (method_needs_sae(method)) {
    if (!scanner) throw Error("method " + std::string(retrieval::method_name(method)) + " needs the SAE");
    const auto t = std::chrono::steady_clock::now();
    const char* aggregate = options.score.aggregation == retrieval::Aggregation::kMax ? "max" : "sum";
    for (const auto& layer : scanner->encode_query(question, aggregate, options.score.question_keys).per_layer) {
      auto& features = out.query.emplace_back();
      for (const auto& [feature, weight] : layer) features.push_back({feature, weight});
    }
    out.encode_query_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }
  std::vector<float> question_vector;
  if (method_needs_dense(method)) {
    if (!dense.encoder || !dense.source)
      throw Error("method " + std::string(retrieval::method_name(method)) + " needs a dense model and dense passage embeddings");
    const auto t = std::chrono::steady_clock::now();
    const std::string_view text = question;
    question_vector = dense.encoder->embed(std::span<const std::string_view>(&text, 1));
    out.embed_question_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }
  // The index's own analyzer (stemmer state is per instance, so one per question).
  out.terms = index::TextAnalyzer(reader.lexical().analyzer_options()).analyze(question);
  // How the scan saw each position (--score-centering context): the chunking recorded in the
  // index's metadata (indexes written before --chunk-overlap existed have none: 0) and where the
  // documents start.
  retrieval::PositionContext positions;
  const nlohmann::json scan = reader.metadata().value("scan", nlohmann::json::object());
  positions.geometry.chunk = scan.value("chunk", 0u);
  positions.geometry.overlap = scan.value("overlap", 0u);
  positions.geometry.bos = scan.value("chunk_bos", false);
  positions.doc_starts.reserve(reader.n_documents());
  for (uint32_t d = 0; d < reader.n_documents(); ++d)
    positions.doc_starts.push_back(reader.document(d).token_begin);
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

std::string evidence_context(const index::IndexReader& reader, std::span<const retrieval::SelectedRange> ranges,
                             const retrieval::ContextOptions& options) {
  return retrieval::assemble_context(
      ranges, [&](retrieval::TokenRange r) { return std::string(reader.text_of(r.begin, r.end)); }, options);
}

}  // namespace s3
