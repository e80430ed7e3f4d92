// s3attn embed: a dense (sentence-embedding) model on its own: the vectors `index --dense-model`
// stores for passages and `ask --method dense` computes for questions, for parity checks.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/device_flags.h"
#include "core/base/error.h"
#include "core/pipeline/documents.h"
#include "core/runtime/dense_model.h"

namespace s3::cli {

Command add_embed(CLI::App& root) {
  struct Args {
    std::string model, input, device = "cpu";
    std::vector<std::string> texts;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* app =
      root.add_subcommand("embed", "Embed texts with a dense model (scripts/export_embedding.py)");
  app->add_option("--model", a->model, "embedding model directory")->required();
  auto* text = app->add_option("--text", a->texts, "a text to embed (repeatable)");
  auto* input = app->add_option("--input", a->input, "a JSON file holding a list of texts")
                    ->check(CLI::ExistingFile);
  text->excludes(input);
  add_device_option(*app, a->device);
  app->add_flag("--json", a->json, "print {\"embeddings\": [[...], ...], \"tokens\": [...], ...}");

  auto run = [a, text, input]() {
    if (text->count() == 0 && input->count() == 0)
      throw UsageError("embed needs --text or --input");
    std::vector<std::string> texts = a->texts;
    if (input->count()) {
      const nlohmann::json j = nlohmann::json::parse(
          read_text_file(a->input, kMaxDocumentBytes, "input file"), nullptr, false);
      if (j.is_discarded() || !j.is_array()) throw Error(a->input + ": not a JSON list of strings");
      texts.clear();
      for (const auto& t : j) {
        if (!t.is_string()) throw Error(a->input + ": not a JSON list of strings");
        texts.push_back(t.get<std::string>());
      }
    }
    const DenseEncoder encoder = DenseEncoder::load(a->model, DeviceSpec::parse(a->device));
    const std::vector<std::string_view> views(texts.begin(), texts.end());
    DenseStats stats;
    const std::vector<float> vectors = encoder.embed(views, &stats);
    const auto dim = static_cast<size_t>(encoder.info().dim);
    if (a->json) {
      nlohmann::json rows = nlohmann::json::array(), tokens = nlohmann::json::array();
      for (size_t i = 0; i < texts.size(); ++i) {
        rows.push_back(
            std::vector<float>(vectors.begin() + static_cast<std::ptrdiff_t>(i * dim),
                               vectors.begin() + static_cast<std::ptrdiff_t>((i + 1) * dim)));
        tokens.push_back(encoder.input_ids(texts[i]).size());
      }
      std::cout << nlohmann::json{{"model", encoder.info().name}, {"dim", dim},
                                  {"embeddings", rows},           {"tokens", tokens},
                                  {"truncated", stats.truncated}, {"batches", stats.batches},
                                  {"seconds", stats.seconds}}
                       .dump()
                << "\n";
      return 0;
    }
    for (size_t i = 0; i < texts.size(); ++i) {
      const float* v = vectors.data() + i * dim;
      double norm = 0;
      for (size_t k = 0; k < dim; ++k)
        norm += static_cast<double>(v[k]) * v[k];
      std::printf("text %zu: norm %.6f, first values %.5f %.5f %.5f %.5f\n", i, std::sqrt(norm),
                  v[0], v[1 % dim], v[2 % dim], v[3 % dim]);
    }
    return 0;
  };
  return {app, run};
}

}  // namespace s3::cli
