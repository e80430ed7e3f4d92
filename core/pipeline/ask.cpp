#include "core/pipeline/ask.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "core/base/error.h"
#include "core/pipeline/evidence.h"
#include "core/pipeline/index_metadata.h"
#include "core/pipeline/index_sources.h"
#include "core/pipeline/passage_embeddings.h"
#include "core/pipeline/question_encoder.h"
#include "core/pipeline/scan.h"
#include "core/runtime/dense_model.h"
#include "core/runtime/generation.h"
#include "core/runtime/model.h"
#include "core/runtime/prompt.h"
#include "index/index_reader.h"
#include "index/manifest.h"

namespace s3 {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

}  // namespace

void AskOptions::validate() const {
  retrieval.validate();
  if (max_new_tokens < 1) throw UsageError("--max-new-tokens must be at least 1");
  if (prompt_template.find("{context}") == std::string::npos ||
      prompt_template.find("{question}") == std::string::npos)
    throw UsageError("--prompt-template must contain {context} and {question}");
}

struct Asker::Impl {
  // Built in place: the sources below refer to `reader`, so an Impl never moves.
  explicit Impl(index::IndexReader r) : reader(std::move(r)) {}
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  index::IndexReader reader;
  std::optional<Model>
      model;  // the index's model: encodes questions; answers unless `answer` is set
  std::optional<Model> answer;               // --answer-model
  std::optional<QuestionEncoder> questions;  // SAE methods only
  IndexPostingSource postings{reader};
  IndexLexicalSource lexical{reader.lexical()};
  std::optional<DenseEncoder> dense_encoder;     // dense methods only
  std::optional<IndexDenseSource> dense_source;  // dense methods only
  double open_s = 0;
  double load_s = 0;
  double warmup_s =
      0;  // CUDA only: one short generation and query encoding before the first question

  const Model& answering() const { return answer ? *answer : *model; }
  retrieval::TokenRange resolve_doc(const std::string& doc) const;
};

namespace {

// The dense model of an index (methods dense / s3-dense): the one it was built with unless
// --dense-model names another copy of it; refused when the index has no embeddings or the model
// differs from the one that made them.
DenseEncoder load_dense_model(const AskSetup& setup, const index::IndexReader& reader) {
  const std::string where = "the index " + setup.index.string();
  if (reader.dense() == nullptr)
    throw Error(
        where +
        " has no dense passage embeddings (it was built without --dense-model); rebuild it with "
        "s3attn index --dense-model DIR --overwrite");
  const IndexMetadata recorded = read_index_metadata(reader.metadata());
  const std::filesystem::path dir =
      setup.dense_model ? *setup.dense_model : std::filesystem::path(recorded.dense_model_dir);
  if (dir.empty()) throw Error(where + " does not record its dense model; pass --dense-model");
  DenseEncoder encoder = DenseEncoder::load(dir, setup.device);
  const std::string& want = recorded.dense_model_fingerprint;
  if (want != encoder.info().fingerprint)
    throw Error(where + " was embedded with another dense model (fingerprint " +
                want.substr(0, 12) + ", " + dir.string() + " has " +
                encoder.info().fingerprint.substr(0, 12) +
                "); use the model it was built with or rebuild the index");
  if (static_cast<uint32_t>(encoder.info().dim) != reader.dense()->dim())
    throw Error(where + " holds dense vectors of " + std::to_string(reader.dense()->dim()) +
                " values, " + dir.string() + " makes " + std::to_string(encoder.info().dim));
  return encoder;
}

nlohmann::json model_json(const Model& m) {
  return {{"path", m.info().dir.string()}, {"fingerprint", m.info().fingerprint}};
}

}  // namespace

Asker::Asker(const AskSetup& setup, retrieval::Method method) {
  const bool need_sae = method_needs_sae(method), need_dense = method_needs_dense(method);
  auto t0 = Clock::now();
  auto impl = std::make_unique<Impl>(index::IndexReader::open(setup.index));
  const double open_s = seconds_since(t0);
  const nlohmann::json& meta = impl->reader.metadata();
  const IndexMetadata recorded = read_index_metadata(meta);
  if (need_sae && impl->reader.content() == index::IndexContent::kLexicalOnly)
    throw Error(lexical_only_refusal(setup.index, method));

  t0 = Clock::now();
  const ModelLoadOptions load{setup.device, setup.dtype};
  if (setup.answer_model) {
    try {
      impl->answer.emplace(Model::load(*setup.answer_model, load));
    } catch (const Error& e) {
      throw Error(std::string("--answer-model: ") + e.what());
    }
  }
  // The index's model encodes the question for the SAE methods and answers when no answer model is
  // given; bm25 and full with an answer model do not need it.
  if (need_sae || !setup.answer_model) {
    const std::filesystem::path model_dir =
        setup.model ? *setup.model : std::filesystem::path(recorded.model_dir);
    if (model_dir.empty())
      throw Error(setup.index.string() + " does not record its model; pass --model");
    Model model = Model::load(model_dir, load);
    const std::string& want_model = recorded.model_fingerprint;
    if (!want_model.empty() && want_model != model.info().fingerprint)
      throw Error("the index " + setup.index.string() +
                  " was built with another model (fingerprint " + want_model.substr(0, 12) + ", " +
                  model_dir.string() + " has " + model.info().fingerprint.substr(0, 12) +
                  "); use the model it was built with or rebuild the index");
    impl->model.emplace(std::move(model));
  }
  if (need_sae) {
    const std::filesystem::path sae_dir =
        setup.sae ? *setup.sae : std::filesystem::path(recorded.sae_dir);
    if (sae_dir.empty()) throw Error(setup.index.string() + " does not record its SAE; pass --sae");
    ScanOptions scan;
    const auto layers = impl->reader.layers();
    scan.layers.assign(layers.begin(), layers.end());
    const ScanRecord recorded_scan = read_scan_record(
        meta, layers, impl->reader.d_latent(), (setup.index / index::kManifestFile).string());
    scan.rope = recorded_scan.rope;
    scan.chunk_bos = recorded_scan.chunk_bos ? ChunkBos::kAlways : ChunkBos::kNever;
    impl->questions.emplace(*impl->model, sae_dir, scan);
    const std::string& want_sae = recorded.sae_fingerprint;
    if (!want_sae.empty() && want_sae != impl->questions->sae_fingerprint())
      throw Error("the index " + setup.index.string() + " was built with another SAE than " +
                  sae_dir.string() + "; use the SAE it was built with or rebuild the index");
  }
  if (need_dense) {
    impl->dense_encoder.emplace(load_dense_model(setup, impl->reader));
    impl->dense_source.emplace(*impl->reader.dense(), impl->reader.lexical());
  }
  impl->open_s = open_s;
  impl->load_s = seconds_since(t0);
  // Warm-up on CUDA (kernel loading, cuBLAS and allocator set-up happen on first use), reported as
  // warmup_s apart from each question's own time.
  const Model& answering = impl->answering();
  if (answering.device().is_cuda()) {
    t0 = Clock::now();
    std::vector<int32_t> ids = answering.tokenizer().encode("Warm-up text for the first kernels.");
    while (!ids.empty() && ids.size() < 256)
      ids.insert(ids.end(), ids.begin(), ids.end());
    GenerationOptions gen;
    gen.max_new_tokens = 4;
    gen.ignore_stop = true;
    if (!ids.empty()) generate(answering, ids, gen);
    if (impl->questions) impl->questions->encode("What is the warm-up question?");
    impl->warmup_s = seconds_since(t0);
  }
  impl_ = std::move(impl);
}

Asker::~Asker() = default;

retrieval::TokenRange Asker::Impl::resolve_doc(const std::string& doc) const {
  if (doc.empty()) return {0, reader.n_tokens()};
  for (uint32_t d = 0; d < reader.n_documents(); ++d) {
    const index::DocumentView view = reader.document(d);
    if (view.name == doc || std::to_string(d) == doc) return {view.token_begin, view.token_end};
  }
  throw UsageError("--doc: no document named '" + doc + "' in the index (see s3attn inspect)");
}

AskResult Asker::ask(const std::string& question, const AskOptions& options) const {
  options.validate();
  const Impl& s = *impl_;
  const auto start = Clock::now();
  if (question.empty()) throw UsageError("--question must not be empty");
  // The question runs through the index's model in one forward pass (SAE methods) and is part of
  // the answering model's prompt (every method), so it must fit each model's window.
  const auto check_window = [&](const Model& m, const char* which) {
    if (const size_t n = m.tokenizer().encode(question).size();
        n > static_cast<size_t>(m.info().max_position_embeddings))
      throw UsageError("--question has " + std::to_string(n) + " tokens, more than " + which +
                       " window of " + std::to_string(m.info().max_position_embeddings) +
                       " tokens; shorten it");
  };
  if (s.model) check_window(*s.model, "the model's");
  if (s.answer) check_window(*s.answer, "the answer model's");
  const retrieval::Method method = options.retrieval.method;

  AskResult result;
  nlohmann::json timings = {
      {"open_index_s", s.open_s}, {"load_model_s", s.load_s}, {"warmup_s", s.warmup_s}};
  result.models = {
      {"index", s.model ? model_json(*s.model)
                        : nlohmann::json(read_index_metadata(s.reader.metadata()).model_dir)},
      {"answer", model_json(s.answering())}};

  // The prompt around the evidence costs tokens too: the evidence budget must leave room for it
  // and for the answer inside the answering model's window.
  const Model& answering = s.answering();
  const ModelInfo& info = answering.info();
  auto build_prompt = [&](const std::string& context) {
    std::string text = replace_all(replace_all(options.prompt_template, "{question}", question),
                                   "{context}", context);
    return apply_chat_template(info, text, options.chat && info.chat_template.has_value());
  };
  const int overhead =
      static_cast<int>(encode_prompt(info, answering.tokenizer(), build_prompt("")).size());
  const int room = info.max_position_embeddings - overhead - options.max_new_tokens;
  retrieval::RetrievalOptions ropt = options.retrieval;
  // With --evidence-only nothing is generated: the budget is taken as given (for `full` too).
  if (options.evidence_only) {
  } else if (method == retrieval::Method::kFull) {
    if (room < 1)
      throw Error(
          "the prompt and --max-new-tokens leave no room for the document in the model's window");
    ropt.budget.budget = static_cast<uint32_t>(room);
  } else if (static_cast<int64_t>(ropt.budget.budget) > room) {
    throw UsageError("--budget " + std::to_string(ropt.budget.budget) +
                     " does not fit the model's window of " +
                     std::to_string(info.max_position_embeddings) + " tokens with a prompt of " +
                     std::to_string(overhead) + " tokens and --max-new-tokens " +
                     std::to_string(options.max_new_tokens) + " (at most " +
                     std::to_string(std::max(room, 0)) + ")");
  }
  result.budget = ropt.budget.budget;

  const retrieval::TokenRange doc = s.resolve_doc(options.doc);
  const DenseRetrieval dense{s.dense_encoder ? &*s.dense_encoder : nullptr,
                             s.dense_source ? &*s.dense_source : nullptr};
  const QuestionRetrieval q =
      retrieve_for_question(s.questions ? &*s.questions : nullptr, s.reader, s.postings, s.lexical,
                            question, doc, ropt, dense);
  const retrieval::QueryFeatures& query = q.query;
  const std::vector<std::string>& terms = q.terms;
  const retrieval::RetrievalResult& retrieved = q.result;
  timings["encode_query_s"] = q.encode_query_s;
  if (method_needs_dense(method)) timings["embed_question_s"] = q.embed_question_s;
  timings["retrieval"] = retrieved.timings;

  // Evidence searched over several documents is shown per document, under a header naming each.
  const bool per_document = options.doc.empty() && s.reader.n_documents() > 1;
  retrieval::Selection selection = retrieved.selection;
  std::vector<int32_t> prompt;
  if (!options.evidence_only) {
    // The budget counts the answering model's tokens; separators, document headers and (with
    // another answering model) another tokenizer make that count differ from the index's, so the
    // candidates are repacked until the evidence holds at most the budget and the prompt and
    // answer fit the window (fit_selection).
    const auto measure = [&](const retrieval::Selection& sel) {
      EvidenceCost cost;
      cost.answer_tokens = s.answer
                               ? count_evidence_tokens(s.reader, sel.ranges, answering.tokenizer())
                               : sel.n_tokens;
      result.context = evidence_context(s.reader, sel.ranges, ropt.context, per_document);
      prompt = encode_prompt(info, answering.tokenizer(), build_prompt(result.context));
      cost.window_over = static_cast<int64_t>(prompt.size()) + options.max_new_tokens -
                         info.max_position_embeddings;
      return cost;
    };
    const uint32_t max_index_budget =
        s.answer ? std::max(doc.size(), ropt.budget.budget) : ropt.budget.budget;
    selection = fit_selection(retrieved, method, doc, ropt.budget, max_index_budget,
                              ropt.budget.budget, measure);
    const EvidenceCost cost = measure(selection);  // the context and prompt of the selection kept
    result.answer_evidence_tokens = cost.answer_tokens;
  } else {
    result.context = evidence_context(s.reader, selection.ranges, ropt.context, per_document);
    result.answer_evidence_tokens =
        s.answer ? count_evidence_tokens(s.reader, selection.ranges, answering.tokenizer())
                 : selection.n_tokens;
  }

  const std::vector<retrieval::SelectedRange> ranges =
      retrieval::split_at_documents(selection.ranges, document_starts(s.reader));
  result.evidence_tokens = selection.n_tokens;
  for (const retrieval::SelectedRange& r : ranges) {
    const uint32_t d = s.reader.document_at(r.range.begin);
    const index::DocumentView view = s.reader.document(d);
    Evidence e{std::string(view.name),
               d,
               r.range.begin - view.token_begin,
               r.range.end - view.token_begin,
               std::string(s.reader.text_of(r.range.begin, r.range.end)),
               std::string(retrieval::source_name(r.source)),
               r.score,
               nullptr};
    if (options.explain) {
      if (r.source == retrieval::Source::kS3)
        e.explain = retrieval::explain_range(s.postings, query, r.range, ropt.score, 10);
      else if (r.source == retrieval::Source::kBm25)
        e.explain = {{"bm25_terms", nlohmann::json::array()}};
      else if (r.source == retrieval::Source::kDense)
        for (const retrieval::ScoredPassage& p :
             retrieved.dense_passages)  // the passage it starts in
          if (p.range.begin <= r.range.begin && r.range.begin < p.range.end) {
            e.explain = {{"passage", p.passage}, {"cosine", p.score}};
            break;
          }
    }
    result.evidence.push_back(std::move(e));
  }
  if (options.explain) {  // BM25 rows: the terms of the best passage overlapping each range
    for (Evidence& e : result.evidence) {
      if (e.source != "bm25") continue;
      const uint32_t begin = s.reader.document(e.doc_id).token_begin + e.start;
      for (const retrieval::ScoredPassage& p : retrieved.passages) {
        if (p.range.begin <= begin && begin < p.range.end) {
          e.explain = {
              {"passage", p.passage},
              {"bm25_terms", retrieval::explain_passage(s.lexical, terms, p.passage, ropt.bm25)}};
          break;
        }
      }
    }
  }

  if (!options.evidence_only) {
    result.prompt_tokens = static_cast<int>(prompt.size());
    GenerationOptions gen;
    gen.max_new_tokens = options.max_new_tokens;
    gen.ignore_stop = options.ignore_stop;
    gen.decode_backend = options.decode_backend;
    const GenerationResult generated = generate(answering, prompt, gen);
    result.answer = generated.text;
    result.tokens = generated.tokens;
    result.stop_reason = generated.stop_reason;
    timings["prefill_s"] = generated.timings.prefill_s;
    timings["decode_s"] = generated.timings.decode_s;
  }
  timings["ask_s"] = seconds_since(start);
  // The process's peak device memory so far (weights included; 0 on the CPU): what a user's GPU
  // must hold for this ask, and for every question asked before it in the same process.
  timings["peak_device_bytes"] = peak_device_memory(s.answering().device());
  result.timings = std::move(timings);
  return result;
}

}  // namespace s3
