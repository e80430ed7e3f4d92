// s3attn sae train / sae eval: one Top-K SAE per tapped layer, trained on keys streamed from the
// model over a corpus, and its reconstruction quality on keys and queries. docs/sae.md.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/device_flags.h"
#include "cli/enum_option.h"
#include "cli/progress.h"
#include "core/base/error.h"
#include "core/pipeline/sae_runs.h"
#include "core/runtime/model.h"

namespace s3::cli {
namespace {

struct CorpusArgs {
  std::vector<std::string> corpus;
  std::string format = "auto", doc_field = "text";

  DocumentSource source() const {
    DocumentSource s;
    s.inputs.assign(corpus.begin(), corpus.end());
    s.format = format;
    s.doc_field = doc_field;
    s.validate();
    return s;
  }
};

void add_corpus_options(CLI::App* app, CorpusArgs& args) {
  app->add_option("--corpus", args.corpus, "text files, directories of them, or JSONL files")
      ->required()
      ->check(CLI::ExistingPath);
  app->add_option("--format", args.format, "auto (.jsonl/.ndjson are JSONL), text or jsonl")
      ->check(CLI::IsMember({"auto", "text", "jsonl"}))
      ->capture_default_str();
  app->add_option("--doc-field", args.doc_field, "JSONL field holding each document's text")
      ->capture_default_str();
}

Model load_model(const std::string& dir, const std::string& device,
                 const std::optional<DType>& dtype) {
  ModelLoadOptions load;
  load.device = DeviceSpec::parse(device);
  load.dtype = dtype;
  return Model::load(dir, load);
}

// A JSON number, or null when not finite (an FVU over a set without variance).
nlohmann::json number(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

std::string human(double v) {
  char buf[32];
  if (v >= 1e6)
    std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (v >= 1e3)
    std::snprintf(buf, sizeof buf, "%.1fK", v / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

Command add_train(CLI::App& parent) {
  struct Args {
    std::string model, out, device = "cpu", head_mode = "per-head";
    std::optional<DType> model_dtype;
    CorpusArgs corpus;
    SaeTrainOptions options;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  SaeTrainOptions& o = args->options;
  sae::TrainerOptions& t = o.trainer;
  CLI::App* app = parent.add_subcommand(
      "train", "Train one Top-K SAE per layer on the keys of a corpus (streamed, never stored)");
  app->add_option("--model", args->model, "model directory (scripts/export_model.py)")->required();
  add_corpus_options(app, args->corpus);
  app->add_option("--out", args->out, "SAE directory to write (sae.json, layer_<L>.safetensors)")
      ->required();
  app->add_option("--layers", o.layers,
                  "tapped layers, comma separated (default: the model's default_taps)")
      ->delimiter(',');
  app->add_option("--latents", t.latents, "latents per layer (d_latent)")->capture_default_str();
  app->add_option("--k", t.k, "active latents per vector")->capture_default_str();
  app->add_option("--steps", t.steps, "optimizer steps")->capture_default_str();
  app->add_option("--batch", t.batch, "vectors per step")->capture_default_str();
  app->add_option("--lr", t.lr, "Adam learning rate")->capture_default_str();
  app->add_option("--k-aux", t.k_aux, "AuxK latents (0 = the power of two nearest d_in / 2)")
      ->capture_default_str();
  app->add_option("--aux-weight", t.aux_weight, "AuxK loss weight")->capture_default_str();
  app->add_option("--head-mode", args->head_mode,
                  "per-head: one vector per KV head; concat: the KV heads of a token concatenated")
      ->capture_default_str();
  app->add_option("--chunk", o.chunk, "tokens per model call (keys of real positions)")
      ->capture_default_str();
  app->add_option("--shuffle-buffer", o.shuffle_buffer,
                  "vectors per layer mixed before batches are drawn (0 = 32 x --batch)")
      ->capture_default_str();
  add_device_option(*app, args->device);
  add_model_dtype_option(*app, args->model_dtype, "--model-dtype");
  add_enum_option(*app, "--save-dtype", o.dtype, kDTypeNames, "dtype of the saved SAE weights");
  // --dtype is the model's everywhere else: here, where two dtypes exist, it is refused by name.
  app->add_option_function<std::string>(
         "--dtype",
         [](const std::string&) {
           throw CLI::ValidationError("--dtype",
                                      "ambiguous in sae train: use --save-dtype (the saved SAE "
                                      "weights) or --model-dtype (the model)");
         },
         "refused: say --save-dtype or --model-dtype")
      ->group("");
  app->add_option("--seed", t.seed, "seed of the initialisation, corpus order and batches")
      ->capture_default_str();
  app->add_option("--checkpoint-every", o.checkpoint_every,
                  "steps between checkpoints in OUT/checkpoint (0 = none)")
      ->capture_default_str();
  app->add_flag("--resume", o.resume, "continue the run checkpointed in OUT/checkpoint");
  app->add_flag("--json", args->json, "print a JSON summary on stdout");

  auto run = [args]() {
    SaeTrainOptions options = args->options;
    options.head_mode = sae::parse_head_mode(args->head_mode);
    options.validate();  // before the (slow) model load
    const DocumentSource source = args->corpus.source();
    const Model model = load_model(args->model, args->device, args->model_dtype);
    const SaeCorpus corpus = read_sae_corpus(model, source);

    std::unique_ptr<ProgressBar> bar;
    auto on_progress = [&](const SaeTrainProgress& p) {
      if (!bar) {  // logged once train_sae accepted the run, so that errors stay one line
        spdlog::info("corpus: {}", corpus.description);
        if (p.resumed_from > 0) spdlog::info("resuming from step {}", p.resumed_from);
        spdlog::info("filling the shuffle buffer ({} vectors per layer) before the first step",
                     p.buffer_capacity);
        bar = std::make_unique<ProgressBar>("sae train", p.steps - p.resumed_from, "steps");
      }
      if (p.checkpoint_step >= 0) spdlog::debug("checkpoint at step {}", p.checkpoint_step);
      std::string extra;
      if (p.step == p.resumed_from) {
        extra = "buffer " +
                std::to_string(100 * p.buffered / std::max<int64_t>(1, p.buffer_capacity)) + "%";
      } else {
        char buf[160];
        std::snprintf(buf, sizeof buf, "loss %.4f fvu %.4f dead %.3f  %s vec/s  epoch %lld", p.loss,
                      p.fvu, p.dead_fraction, human(p.vectors_per_s).c_str(),
                      static_cast<long long>(p.epoch + 1));
        extra = buf;
      }
      bar->update(static_cast<uint64_t>(p.step - p.resumed_from), extra);
    };
    const SaeTrainResult r = train_sae(model, corpus, options, args->out, on_progress);
    if (bar) bar->finish();
    spdlog::info("wrote {} ({} steps, {} tokens, {} vectors per layer) in {:.1f} s, {} vectors/s",
                 args->out, r.info.steps, r.info.tokens, r.info.vectors, r.seconds,
                 human(r.vectors_per_s));
    if (!r.checkpoint_dir.empty())
      spdlog::info("checkpoint kept in {} for --resume; delete it when done",
                   r.checkpoint_dir.string());

    if (args->json) {
      nlohmann::json layers = nlohmann::json::object();
      for (const auto& [layer, s] : r.info.stats)
        layers[std::to_string(layer)] = {{"fvu", number(s.fvu.value_or(NAN))},
                                         {"dead_fraction", number(s.dead_fraction.value_or(NAN))}};
      const nlohmann::json out = {
          {"out", args->out},
          {"layers", layers},
          {"steps", r.info.steps},
          {"resumed_from", r.resumed_from},
          {"tokens", r.info.tokens},
          {"vectors", r.info.vectors},
          {"seconds", r.seconds},
          {"vectors_per_s", r.vectors_per_s},
          {"checkpoint", r.checkpoint_dir.empty() ? nlohmann::json(nullptr)
                                                  : nlohmann::json(r.checkpoint_dir.string())}};
      std::cout << out.dump() << "\n";
    } else {
      std::printf("%-6s %-10s %s\n", "layer", "fvu", "dead_fraction");
      for (const auto& [layer, s] : r.info.stats)
        std::printf("%-6d %-10.4f %.4f\n", layer, s.fvu.value_or(NAN),
                    s.dead_fraction.value_or(NAN));
    }
    return 0;
  };
  return {app, run};
}

Command add_eval(CLI::App& parent) {
  struct Args {
    std::string model, sae_dir, device = "cpu";
    std::optional<DType> model_dtype;
    CorpusArgs corpus;
    SaeEvalOptions options;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* app = parent.add_subcommand(
      "eval", "Per layer FVU on keys and on queries, dead latents and mean L0 of an SAE");
  app->add_option("--model", args->model, "model directory")->required();
  app->add_option("--sae", args->sae_dir, "SAE directory (s3attn sae train)")->required();
  add_corpus_options(app, args->corpus);
  app->add_option("--max-tokens", args->options.max_tokens, "evaluate on this many corpus tokens")
      ->capture_default_str();
  app->add_option("--chunk", args->options.chunk, "tokens per model call")->capture_default_str();
  add_device_option(*app, args->device);
  add_model_dtype_option(*app, args->model_dtype, "--model-dtype");
  app->add_option_function<std::string>(
         "--sae-dtype",
         [args](const std::string& text) {
           try {
             args->options.sae_dtype = sae::parse_encoder_dtype(text);
           } catch (const UsageError& e) {
             throw CLI::ValidationError("--sae-dtype", e.what());
           }
         },
         "encoder compute dtype: auto (bfloat16 on CUDA, as the scan), float32, bfloat16, float16")
      ->default_str("auto");
  app->add_flag("--json", args->json, "print the results as JSON");

  auto run = [args]() {
    args->options.validate();
    const DocumentSource source = args->corpus.source();
    const Model model = load_model(args->model, args->device, args->model_dtype);
    const SaeCorpus corpus = read_sae_corpus(model, source, args->options.max_tokens);
    ProgressBar bar("sae eval", std::min(args->options.max_tokens, corpus.tokens), "tokens");
    const SaeEvalResult r = evaluate_sae(model, args->sae_dir, corpus, args->options,
                                         [&](uint64_t done, uint64_t) { bar.update(done); });
    bar.finish();
    if (r.unresolved_rows > 0)
      spdlog::warn("{} encoder rows kept an approximate top-k (ties at the k-th value)",
                   r.unresolved_rows);

    if (args->json) {
      nlohmann::json layers = nlohmann::json::object(), queries = nlohmann::json::object();
      for (const SaeLayerEval& l : r.layers) {
        layers[std::to_string(l.layer)] = {{"fvu_keys", number(l.fvu_keys)},
                                           {"fvu_queries", number(l.fvu_queries)},
                                           {"dead_fraction", number(l.dead_fraction)},
                                           {"l0", number(l.l0)}};
        queries[std::to_string(l.layer)] = {{"dead_fraction", number(l.dead_fraction_queries)},
                                            {"l0", number(l.l0_queries)},
                                            {"key_vectors", l.key_vectors},
                                            {"query_vectors", l.query_vectors}};
      }
      const nlohmann::json out = {{"layers", layers},
                                  {"queries", queries},
                                  {"sae", args->sae_dir},
                                  {"k", r.info.k},
                                  {"d_latent", r.info.d_latent},
                                  {"head_mode", std::string(sae::to_string(r.info.head_mode))},
                                  {"tokens", r.tokens},
                                  {"chunks", r.chunks},
                                  {"unresolved_rows", r.unresolved_rows},
                                  {"seconds", r.seconds}};
      std::cout << out.dump() << "\n";
    } else {
      std::printf("%-6s %-10s %-12s %-14s %s\n", "layer", "fvu_keys", "fvu_queries",
                  "dead_fraction", "l0");
      for (const SaeLayerEval& l : r.layers)
        std::printf("%-6d %-10.4f %-12.4f %-14.4f %.2f\n", l.layer, l.fvu_keys, l.fvu_queries,
                    l.dead_fraction, l.l0);
      spdlog::info("{} tokens in {} chunks, {:.1f} s", r.tokens, r.chunks, r.seconds);
    }
    return 0;
  };
  return {app, run};
}

}  // namespace

std::vector<Command> add_sae(CLI::App& root) {
  CLI::App* group = root.add_subcommand("sae", "Train and evaluate the sparse autoencoders");
  group->require_subcommand(1);
  return {add_train(*group), add_eval(*group)};
}

}  // namespace s3::cli
