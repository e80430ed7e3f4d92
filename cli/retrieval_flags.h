// The retrieval knobs (docs/retrieval.md), declared once for every command that retrieves
// (ask and longbench). Values land in a RetrievalOptions; call finish() after parsing.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "retrieval/pipeline.h"

namespace s3::cli {

struct RetrievalFlags {
  retrieval::RetrievalOptions options;
  std::string method = "s3-hybrid";
  std::string aggregate =
      std::string(retrieval::aggregation_name(retrieval::ScoreOptions{}.aggregation));
  std::string query_vectors = retrieval::ScoreOptions{}.question_keys ? "keys" : "queries";
  std::string score_centering =
      std::string(retrieval::score_centering_name(retrieval::ScoreOptions{}.score_centering));
  uint32_t nms_radius = 0;  // 0 = the default (max span / 2)
  bool bm25_unique_terms = false;
  std::string dense_model;  // --dense-model: the sentence encoder of the dense methods

  // Turns the string flags into enums and validates everything (UsageError naming the flag).
  void finish();
};

void add_retrieval_flags(CLI::App& app, RetrievalFlags& flags);

}  // namespace s3::cli
