// s3attn ask: answer questions from an index's evidence within a token budget.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/device_flags.h"
#include "cli/retrieval_flags.h"
#include "core/base/error.h"
#include "core/pipeline/ask.h"

namespace s3::cli {
namespace {

constexpr uint64_t kMaxPromptTemplateBytes = uint64_t{1} << 20;
constexpr uint64_t kMaxQuestionsFileBytes = uint64_t{64} << 20;

// One question's result: a JSON line, or the answer and its evidence for a reader.
void print_answer(const std::string& question, const AskResult& r, const AskOptions& options,
                  bool json) {
  if (json) {
    nlohmann::json evidence = nlohmann::json::array();
    for (const Evidence& e : r.evidence) {
      nlohmann::json row = {{"doc", e.doc},   {"start", e.start},   {"end", e.end},
                            {"text", e.text}, {"source", e.source}, {"score", e.score}};
      if (!e.explain.is_null()) row["explain"] = e.explain;
      evidence.push_back(std::move(row));
    }
    const nlohmann::json out = {
        {"question", question},
        {"answer", r.answer},
        {"evidence", evidence},
        {"timings", r.timings},
        {"budget", r.budget},
        {"evidence_tokens", r.evidence_tokens},
        {"answer_evidence_tokens", r.answer_evidence_tokens},
        {"models", r.models},
        {"context", r.context},
        {"prompt_tokens", r.prompt_tokens},
        {"tokens", r.tokens},
        {"stop_reason", r.stop_reason},
        {"method", std::string(retrieval::method_name(options.retrieval.method))}};
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";  // names may not be UTF-8
    return;
  }
  if (!options.evidence_only) std::cout << "Answer: " << r.answer << "\n\n";
  std::cout << "Evidence (" << r.evidence.size() << " ranges, " << r.evidence_tokens << " of "
            << r.budget << " budget tokens):\n";
  for (const Evidence& e : r.evidence) {
    std::string text = e.text;
    for (char& c : text)
      if (c == '\n') c = ' ';
    if (text.size() > 160) {  // cut on a UTF-8 character boundary
      size_t cut = 157;
      while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
        --cut;
      text = text.substr(0, cut) + "...";
    }
    std::cout << "  [" << e.source << " " << e.score << "] " << e.doc << " tokens " << e.start
              << "-" << e.end << ": " << text << "\n";
    if (!e.explain.is_null()) std::cout << "      explain: " << e.explain.dump() << "\n";
  }
}

// The non-blank lines of a questions file (a trailing '\r' dropped).
std::vector<std::string> read_questions(const std::string& path) {
  const std::string text = read_text_file(path, kMaxQuestionsFileBytes, "questions file");
  std::vector<std::string> out;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(begin, end - begin);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") != std::string::npos) out.push_back(std::move(line));
    begin = end + 1;
  }
  if (out.empty()) throw UsageError("--questions-file " + path + " holds no question");
  return out;
}

}  // namespace

Command add_ask(CLI::App& root) {
  struct Args {
    std::string index, question, questions_file, model, sae, answer_model, device = "cpu";
    std::optional<DType> dtype;
    std::string prompt_template_file;
    RetrievalFlags retrieval;
    AskOptions ask;
    bool no_chat = false, json = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand("ask", "Answer questions from an index");
  app->add_option("--index", a->index, "index directory (s3attn index)")->required();
  auto* question = app->add_option("--question", a->question, "the question");
  auto* questions =
      app->add_option(
             "--questions-file", a->questions_file,
             "ask every non-blank line of this file in one process (index and models load once)")
          ->check(CLI::ExistingFile);
  question->excludes(questions);
  app->add_option("--model", a->model,
                  "model directory (default: the one the index was built with)");
  app->add_option("--sae", a->sae, "SAE directory (default: the one the index was built with)");
  app->add_option("--answer-model", a->answer_model,
                  "model that reads the evidence and answers (default: the index's model); "
                  "--budget counts its tokens");
  add_device_option(*app, a->device);
  add_model_dtype_option(*app, a->dtype);
  add_retrieval_flags(*app, a->retrieval);
  app->add_option("--max-new-tokens", a->ask.max_new_tokens, "at most this many answer tokens")
      ->capture_default_str();
  app->add_flag("--evidence-only", a->ask.evidence_only, "stop after retrieval");
  app->add_option("--doc", a->ask.doc, "ask about one document (name or id); default: all");
  app->add_flag("--no-chat", a->no_chat, "do not use the model's chat template");
  app->add_option("--prompt-template-file", a->prompt_template_file,
                  "prompt with {context} and {question}")
      ->check(CLI::ExistingFile);
  app->add_flag("--explain", a->ask.explain,
                "show the features / terms that chose each evidence range");
  add_decode_backend_option(*app, a->ask.decode_backend);
  app->add_flag("--ignore-stop", a->ask.ignore_stop,
                "always generate --max-new-tokens tokens (benchmarks)");
  app->add_flag("--json", a->json, "print a JSON object per question");

  auto run = [a, question, questions]() {
    if (question->count() == 0 && questions->count() == 0)
      throw UsageError("ask needs --question or --questions-file");
    a->retrieval.finish();
    a->ask.retrieval = a->retrieval.options;
    a->ask.chat = !a->no_chat;
    if (!a->prompt_template_file.empty())
      a->ask.prompt_template =
          read_text_file(a->prompt_template_file, kMaxPromptTemplateBytes, "prompt template");
    a->ask.validate();
    const std::vector<std::string> asked = questions->count()
                                               ? read_questions(a->questions_file)
                                               : std::vector<std::string>{a->question};
    AskSetup setup;
    setup.index = a->index;
    if (!a->model.empty()) setup.model = a->model;
    if (!a->sae.empty()) setup.sae = a->sae;
    if (!a->retrieval.dense_model.empty()) setup.dense_model = a->retrieval.dense_model;
    if (!a->answer_model.empty()) setup.answer_model = a->answer_model;
    setup.device = DeviceSpec::parse(a->device);
    setup.dtype = a->dtype;

    const retrieval::Method method = a->ask.retrieval.method;
    const Asker asker(setup, method);
    for (size_t i = 0; i < asked.size(); ++i) {
      if (asked.size() > 1 && !a->json) std::cout << (i ? "\n" : "") << "Q: " << asked[i] << "\n";
      print_answer(asked[i], asker.ask(asked[i], a->ask), a->ask, a->json);
    }
    return 0;
  };
  return {app, run};
}

}  // namespace s3::cli
