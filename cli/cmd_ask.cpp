// s3attn ask: answer a question from an index's evidence within a token budget.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/retrieval_flags.h"
#include "core/ask.h"
#include "core/error.h"

namespace s3::cli {

Command add_ask(CLI::App& root) {
  struct Args {
    std::string index, question, model, sae, device = "cpu", dtype, prompt_template_file;
    RetrievalFlags retrieval;
    AskOptions ask;
    bool no_chat = false, json = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand("ask", "Answer a question from an index");
  app->add_option("--index", a->index, "index directory (s3attn index)")->required();
  app->add_option("--question", a->question, "the question")->required();
  app->add_option("--model", a->model, "model directory (default: the one the index was built with)");
  app->add_option("--sae", a->sae, "SAE directory (default: the one the index was built with)");
  app->add_option("--device", a->device, "cpu, cuda or cuda:N")->capture_default_str();
  app->add_option("--dtype", a->dtype, "model dtype (default: the exported one)");
  add_retrieval_flags(*app, a->retrieval);
  app->add_option("--max-new-tokens", a->ask.max_new_tokens, "at most this many answer tokens")->capture_default_str();
  app->add_flag("--evidence-only", a->ask.evidence_only, "stop after retrieval");
  app->add_option("--doc", a->ask.doc, "ask about one document (name or id); default: all");
  app->add_flag("--no-chat", a->no_chat, "do not use the model's chat template");
  app->add_option("--prompt-template-file", a->prompt_template_file, "prompt with {context} and {question}")
      ->check(CLI::ExistingFile);
  app->add_flag("--explain", a->ask.explain, "show the features / terms that chose each evidence range");
  app->add_flag("--ignore-stop", a->ask.ignore_stop, "always generate --max-new-tokens tokens (benchmarks)");
  app->add_flag("--json", a->json, "print a JSON object");

  auto run = [a]() {
    a->retrieval.finish();
    a->ask.retrieval = a->retrieval.options;
    a->ask.chat = !a->no_chat;
    if (!a->prompt_template_file.empty()) a->ask.prompt_template = read_text_file(a->prompt_template_file);
    a->ask.validate();
    AskSetup setup;
    setup.index = a->index;
    if (!a->model.empty()) setup.model = a->model;
    if (!a->sae.empty()) setup.sae = a->sae;
    if (!a->retrieval.dense_model.empty()) setup.dense_model = a->retrieval.dense_model;
    setup.device = DeviceSpec::parse(a->device);
    if (!a->dtype.empty()) setup.dtype = validate_dtype(a->dtype);

    const retrieval::Method method = a->ask.retrieval.method;
    const Asker asker(setup, method_needs_sae(method), method_needs_dense(method));
    const AskResult r = asker.ask(a->question, a->ask);
    if (a->json) {
      nlohmann::json evidence = nlohmann::json::array();
      for (const Evidence& e : r.evidence) {
        nlohmann::json row = {{"doc", e.doc}, {"start", e.start}, {"end", e.end}, {"text", e.text},
                              {"source", e.source}, {"score", e.score}};
        if (!e.explain.is_null()) row["explain"] = e.explain;
        evidence.push_back(std::move(row));
      }
      nlohmann::json out = {{"answer", r.answer},
                            {"evidence", evidence},
                            {"timings", r.timings},
                            {"budget", r.budget},
                            {"evidence_tokens", r.evidence_tokens},
                            {"prompt_tokens", r.prompt_tokens},
                            {"tokens", r.tokens},
                            {"stop_reason", r.stop_reason},
                            {"method", std::string(retrieval::method_name(a->ask.retrieval.method))}};
      std::cout << out.dump() << "\n";
      return 0;
    }
    if (!a->ask.evidence_only) std::cout << "Answer: " << r.answer << "\n\n";
    std::cout << "Evidence (" << r.evidence.size() << " ranges, " << r.evidence_tokens << " of " << r.budget
              << " budget tokens):\n";
    for (const Evidence& e : r.evidence) {
      std::string text = e.text;
      for (char& c : text)
        if (c == '\n') c = ' ';
      if (text.size() > 160) {  // cut on a UTF-8 character boundary
        size_t cut = 157;
        while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
        text = text.substr(0, cut) + "...";
      }
      std::cout << "  [" << e.source << " " << e.score << "] " << e.doc << " tokens " << e.start << "-" << e.end << ": "
                << text << "\n";
      if (!e.explain.is_null()) std::cout << "      explain: " << e.explain.dump() << "\n";
    }
    return 0;
  };
  return {app, run};
}

}  // namespace s3::cli
