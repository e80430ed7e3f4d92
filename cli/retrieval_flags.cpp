#include "cli/retrieval_flags.h"

#include "core/base/error.h"

namespace s3::cli {

void add_retrieval_flags(CLI::App& app, RetrievalFlags& f) {
  auto& o = f.options;
  const char* group = "Retrieval (docs/retrieval.md)";
  app.add_option("--method", f.method, "s3-hybrid | s3 | bm25 | dense | s3-dense | full")
      ->capture_default_str()
      ->group(group);
  app.add_option("--budget", o.budget.budget, "evidence tokens handed to the model")
      ->capture_default_str()
      ->group(group);
  app.add_option("--lead", o.budget.lead_tokens, "first tokens of the document (s3-hybrid)")
      ->capture_default_str()
      ->group(group);
  app.add_option("--tail", o.budget.tail_tokens, "last tokens of the document (s3-hybrid)")
      ->capture_default_str()
      ->group(group);
  app.add_option("--bm25-share", o.budget.bm25_share,
                 "BM25's (s3-dense: dense) share of the budget (s3-hybrid)")
      ->capture_default_str()
      ->group(group);
  app.add_option("--lead-tail-max-share", o.budget.lead_tail_max_share,
                 "cap of lead + tail as a share of the budget")
      ->capture_default_str()
      ->group(group);
  app.add_option("--aggregate", f.aggregate, "sum | max over the question's tokens and heads")
      ->capture_default_str()
      ->group(group);
  app.add_option("--query-vectors", f.query_vectors,
                 "question side encoded by the SAE: queries | keys")
      ->capture_default_str()
      ->group(group);
  app.add_option("--max-df-fraction", o.score.max_df_fraction,
                 "drop query features with df above this fraction of tokens")
      ->capture_default_str()
      ->group(group);
  app.add_option("--max-query-features", o.score.max_query_features,
                 "keep the N strongest query features per layer (0 = all)")
      ->capture_default_str()
      ->group(group);
  app.add_option("--score-centering", f.score_centering,
                 "none | mean | context: subtract the mean S3 score (of positions with as much "
                 "scan context)")
      ->capture_default_str()
      ->group(group);
  app.add_option("--score-threads", o.score.threads,
                 "threads scoring the layers, 0 = one per layer up to the cores (same result for "
                 "any value)")
      ->capture_default_str()
      ->group(group);
  app.add_option("--max-query-postings", o.score.max_query_postings,
                 "per layer, keep the strongest query features while their postings fit this "
                 "budget (0 = no budget)")
      ->capture_default_str()
      ->group(group);
  app.add_option("--layer-weights", o.score.layer_weights,
                 "weight per tapped layer, comma separated")
      ->delimiter(',')
      ->group(group);
  app.add_option("--smooth-width", o.spans.smooth_width, "box smoothing width in tokens")
      ->capture_default_str()
      ->group(group);
  app.add_option("--grow-fraction", o.spans.grow_fraction,
                 "grow a span while smoothed score >= fraction x peak")
      ->capture_default_str()
      ->group(group);
  app.add_option("--max-span", o.spans.max_span_tokens, "longest span in tokens")
      ->capture_default_str()
      ->group(group);
  app.add_option("--nms-radius", f.nms_radius,
                 "minimum distance between peaks (default: max span / 2)")
      ->group(group);
  app.add_option("--bm25-k1", o.bm25.k1, "BM25 k1")->capture_default_str()->group(group);
  app.add_option("--bm25-b", o.bm25.b, "BM25 b")->capture_default_str()->group(group);
  app.add_flag("--bm25-unique-terms", f.bm25_unique_terms, "count a repeated question term once")
      ->group(group);
  app.add_option("--bm25-max-passages", o.bm25.max_passages, "best N passages only (0 = all)")
      ->group(group);
  app.add_option("--dense-max-passages", o.dense.max_passages,
                 "most similar N passages only (dense, s3-dense; 0 = all)")
      ->group(group);
  app.add_option("--dense-model", f.dense_model,
                 "sentence-embedding model directory of dense / s3-dense (ask: default the "
                 "index's; longbench: required)")
      ->group(group);
  app.add_option("--separator", o.context.separator, "text between non-adjacent evidence ranges")
      ->group(group);
  app.add_option(
         "--document-header", o.context.document_header,
         "heading of each document's evidence when the index holds several ({name}: its name)")
      ->group(group);
}

void RetrievalFlags::finish() {
  options.method = retrieval::parse_method(method);
  if (aggregate == "sum")
    options.score.aggregation = retrieval::Aggregation::kSum;
  else if (aggregate == "max")
    options.score.aggregation = retrieval::Aggregation::kMax;
  else
    throw UsageError("--aggregate: '" + aggregate + "' is not one of sum, max");
  options.score.score_centering = retrieval::parse_score_centering(score_centering);
  if (query_vectors == "queries" || query_vectors == "keys")
    options.score.question_keys = query_vectors == "keys";
  else
    throw UsageError("--query-vectors: '" + query_vectors + "' is not one of queries, keys");
  if (nms_radius > 0) options.spans.nms_radius = nms_radius;
  options.bm25.count_repeated_terms = !bm25_unique_terms;
  options.validate();
}

}  // namespace s3::cli
