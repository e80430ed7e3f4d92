// s3attn tokenize: the C++ tokenizer on its own, for parity checks against Hugging Face tokenizers.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/base/error.h"
#include "core/pipeline/documents.h"
#include "core/tokenizer/tokenizer.h"

namespace s3::cli {

Command add_tokenize(CLI::App& root) {
  struct Args {
    std::string tokenizer, text, input;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand(
      "tokenize", "Tokenize text with a tokenizer.json (no special tokens added)");
  app->add_option("--tokenizer", args->tokenizer, "tokenizer.json file")
      ->required()
      ->check(CLI::ExistingFile);
  auto* text = app->add_option("--text", args->text, "text to tokenize");
  auto* input = app->add_option("--input", args->input, "file whose content is tokenized")
                    ->check(CLI::ExistingFile);
  text->excludes(input);
  app->add_flag("--json", args->json, "print {\"ids\": [...]}");

  auto run = [args, text, input]() {
    if (text->count() == 0 && input->count() == 0)
      throw UsageError("tokenize needs --text or --input");
    const std::string content =
        input->count() ? read_text_file(args->input, kMaxDocumentBytes, "input file") : args->text;
    const Tokenizer tokenizer = Tokenizer::from_file(args->tokenizer);
    const std::vector<int32_t> ids = tokenizer.encode(content);
    if (args->json) {
      std::cout << nlohmann::json{{"ids", ids}}.dump() << "\n";
    } else {
      for (size_t i = 0; i < ids.size(); ++i)
        std::cout << (i ? " " : "") << ids[i];
      std::cout << "\n";
    }
    return 0;
  };
  return {app, run};
}

}  // namespace s3::cli
