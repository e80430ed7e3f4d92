#include "core/pipeline/longbench.h"

#include "core/pipeline/evidence.h"

#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <span>

#include "core/base/error.h"
#include "core/base/file_hash.h"
#include "core/base/file_read.h"
#include "core/base/fs_util.h"
#include "core/base/version.h"
#include "core/pipeline/index_sources.h"
#include "core/pipeline/lexical_scan.h"
#include "core/pipeline/passage_embeddings.h"
#include "core/pipeline/question_encoder.h"
#include "core/pipeline/scan.h"
#include "core/runtime/dense_model.h"
#include "core/runtime/device.h"
#include "core/runtime/generation.h"
#include "core/runtime/model.h"
#include "core/runtime/prompt.h"
#include "index/index_reader.h"
#include "index/index_writer.h"
#include "index/manifest.h"
#include "index/text_analyzer.h"

namespace s3 {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// LongBench's config files and a run's manifest are a few KiB; a task's results, a few MiB.
constexpr uint64_t kMaxConfigBytes = uint64_t{16} << 20;
constexpr uint64_t kMaxResultsBytes = uint64_t{4} << 30;

const std::set<std::string>& no_chat_tasks() {
  static const std::set<std::string> tasks = {"trec", "triviaqa", "samsum",
                                              "lsht", "lcc",      "repobench-p"};
  return tasks;
}

std::string xxh3_file(const fs::path& path) {
  return hex64(xxh3_64_file(path, "file"));
}

std::string xxh3_text(const std::string& text) {
  return hex64(XXH3_64bits(text.data(), text.size()));
}

nlohmann::json read_json_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error("missing config file " + path.string());
  const std::string text = read_regular_file(path, kMaxConfigBytes, "JSON file");
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error(path.string() + " is not a JSON object");
  return j;
}

struct Sample {
  std::string id, input, context;
  nlohmann::json answers, all_classes, length;
  size_t doc = 0;             // samples of one document share its index (L-Eval)
  nlohmann::json evaluation;  // L-Eval's metric name, copied to the row
  // Optional (synthetic tasks): strings whose presence in the model's context is recorded as
  // evidence_recall, and a question whose evidence is searched for them too (not generated).
  std::vector<std::string> needles;
  std::string control_question;
};

// The optional `needles` (non-empty strings) and `control_question` of a task row.
void read_needles(const nlohmann::json& row, const std::string& where, Sample& s) {
  if (row.contains("needles")) {
    const nlohmann::json& n = row["needles"];
    if (!n.is_array()) throw Error(where + ": needles must be a list of strings");
    for (const nlohmann::json& x : n) {
      if (!x.is_string() || x.get<std::string>().empty())
        throw Error(where + ": needles must be non-empty strings");
      s.needles.push_back(x.get<std::string>());
    }
  }
  if (row.contains("control_question")) {
    if (!row["control_question"].is_string())
      throw Error(where + ": control_question must be a string");
    s.control_question = row["control_question"].get<std::string>();
  }
}

size_t count_occurrences(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + needle.size()))
    ++n;
  return n;
}

// Share of the needles in the context part of `prompt`: a needle counts when it occurs more often
// in the prompt than in `bare`, the same template without a context (its instruction or the
// question may hold the string too).
double needle_recall(const std::string& prompt, const std::string& bare,
                     const std::vector<std::string>& needles) {
  size_t found = 0;
  for (const std::string& n : needles)
    if (count_occurrences(prompt, n) > count_occurrences(bare, n)) ++found;
  return static_cast<double>(found) / static_cast<double>(needles.size());
}

std::vector<Sample> read_task_file(const fs::path& path) {
  std::ifstream in = open_regular_file(path, "data file");
  std::vector<Sample> out;
  std::string line;
  for (size_t lineno = 1; std::getline(in, line); ++lineno) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json row = nlohmann::json::parse(line, nullptr, false);
    const std::string where = path.string() + ":" + std::to_string(lineno);
    if (row.is_discarded() || !row.is_object()) throw Error(where + ": not a JSON object");
    // Some redistributions of LongBench rows (e.g. WaterBench's 200 lcc rows) name the references
    // `outputs` and spell a missing all_classes as the string "null"; they are read as LongBench's.
    if (!row.contains("answers") && row.contains("outputs")) row["answers"] = row["outputs"];
    if (row.contains("all_classes") && row["all_classes"] == "null") row["all_classes"] = nullptr;
    for (const char* key : {"_id", "input", "context", "answers"})
      if (!row.contains(key)) throw Error(where + ": no field '" + key + "'");
    if (!row["_id"].is_string() || !row["input"].is_string() || !row["context"].is_string() ||
        !row["answers"].is_array())
      throw Error(where + ": _id, input, context must be strings and answers a list");
    Sample s;
    s.id = row["_id"].get<std::string>();
    s.input = row["input"].get<std::string>();
    s.context = row["context"].get<std::string>();
    s.answers = row["answers"];
    s.all_classes = row.value("all_classes", nlohmann::json());
    s.length = row.value("length", nlohmann::json());
    read_needles(row, where, s);
    s.doc = out.size();
    out.push_back(std::move(s));
  }
  return out;
}

// L-Eval: one document (`input`) per row with many `instructions` / `outputs`; each instruction is
// a sample with _id "<row>-<question>" and answers [output].
std::vector<Sample> read_leval_file(const fs::path& path) {
  std::ifstream in = open_regular_file(path, "data file");
  std::vector<Sample> out;
  std::string line;
  size_t doc = 0;
  for (size_t lineno = 1; std::getline(in, line); ++lineno) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const nlohmann::json row = nlohmann::json::parse(line, nullptr, false);
    const std::string where = path.string() + ":" + std::to_string(lineno);
    if (row.is_discarded() || !row.is_object()) throw Error(where + ": not a JSON object");
    if (!row.contains("input") || !row["input"].is_string() || !row.contains("instructions") ||
        !row["instructions"].is_array() || !row.contains("outputs") || !row["outputs"].is_array() ||
        row["instructions"].size() != row["outputs"].size())
      throw Error(where +
                  ": an L-Eval row needs input, and instructions and outputs of equal length");
    const std::string document = row["input"].get<std::string>();
    size_t words = 0;
    for (size_t i = 0; i < document.size(); ++i)
      if (!std::isspace(static_cast<unsigned char>(document[i])) &&
          (i == 0 || std::isspace(static_cast<unsigned char>(document[i - 1]))))
        ++words;
    for (size_t q = 0; q < row["instructions"].size(); ++q) {
      if (!row["instructions"][q].is_string() || !row["outputs"][q].is_string())
        throw Error(where + ": instructions and outputs must be strings");
      Sample s;
      s.id = std::to_string(doc) + "-" + std::to_string(q);
      s.input = row["instructions"][q].get<std::string>();
      s.context = document;
      s.answers = nlohmann::json::array({row["outputs"][q]});
      s.length = words;
      s.doc = doc;
      s.evaluation = row.value("evaluation", nlohmann::json());
      out.push_back(std::move(s));
    }
    ++doc;
  }
  return out;
}

// Reads the rows a killed run left; a last line cut by the kill is dropped and the file rewritten.
std::set<std::string> resume_file(const fs::path& path) {
  std::set<std::string> done;
  if (!fs::exists(path)) return done;
  const std::string content = read_regular_file(path, kMaxResultsBytes, "results file");
  std::string kept;
  bool rewrite = false;
  size_t begin = 0;
  while (begin < content.size()) {
    size_t end = content.find('\n', begin);
    const bool last = end == std::string::npos || end + 1 >= content.size();
    const bool complete = end != std::string::npos;
    if (!complete) end = content.size();
    const std::string line = content.substr(begin, end - begin);
    begin = end + 1;
    if (line.empty()) continue;
    const nlohmann::json row = nlohmann::json::parse(line, nullptr, false);
    const bool ok =
        !row.is_discarded() && row.is_object() && row.contains("_id") && row["_id"].is_string();
    if (!ok || !complete) {
      if (!last)
        throw Error(path.string() +
                    ": a row that is not valid JSON before the last line; move the file away");
      rewrite = true;  // a cut last line: run that sample again
      continue;
    }
    if (!done.insert(row["_id"].get<std::string>()).second)
      throw Error(path.string() + ": duplicate _id");
    kept += line + "\n";
  }
  if (rewrite) write_file_atomic(path, kept, true);
  return done;
}

struct TempDir {
  fs::path path;
  ~TempDir() {
    if (!path.empty()) remove_tree_quietly(path);
  }
};

// A sample's context indexed as one document with the same Scanner / IndexWriter as `s3attn
// index` (without a Scanner: lexical-only, as `s3attn index` without --sae), in a temporary
// directory removed with the object. Built in place (the sources refer to
// `reader`), so it never moves.
struct ContextIndex {
  ContextIndex(fs::path dir, index::IndexReader r) : tmp{std::move(dir)}, reader(std::move(r)) {}
  ContextIndex(const ContextIndex&) = delete;
  ContextIndex& operator=(const ContextIndex&) = delete;
  TempDir tmp;  // first member: removed after the reader is closed
  index::IndexReader reader;
  IndexPostingSource postings{reader};
  IndexLexicalSource lexical{reader.lexical()};
  std::optional<IndexDenseSource> dense;  // with a dense model
  double index_s = 0;
};

// How each sample's context is indexed: with the SAE scan, or (no scanner) by the index model's
// tokenizer alone.
struct ContextIndexer {
  const Scanner* scanner = nullptr;
  const ModelInfo* model = nullptr;  // the index's model
  const Tokenizer* tokenizer = nullptr;
};

// `dense`: also embed the passages (dense methods).
std::unique_ptr<ContextIndex> index_context(const ContextIndexer& indexer,
                                            const DenseEncoder* dense, const fs::path& tmp_parent,
                                            const std::string& context, uint32_t passage_words) {
  const auto t = Clock::now();
  fs::create_directories(tmp_parent);  // removed by hand since the run began, say
  TempDir guard{make_temp_dir(tmp_parent, "lb-" + std::to_string(::getpid()) + "-")};
  index::IndexWriterOptions w;
  if (indexer.scanner) {
    w.out = guard.path / "index";
    w.layers = indexer.scanner->layers();
    w.d_latent = static_cast<uint32_t>(indexer.scanner->d_latent());
    w.metadata = to_json(indexer.scanner->metadata());
    w.lexical.target_words = passage_words;
  } else {
    w = lexical_writer_options(guard.path / "index", *indexer.model, passage_words);
  }
  w.fsync = false;  // a throwaway index
  if (dense) {
    add_dense_metadata(w.metadata, *dense);
    w.dense_dim = static_cast<uint32_t>(dense->info().dim);
  }
  w.validate();
  {
    index::IndexWriter writer(w);
    const std::vector<Document> docs = {Document{"context", context}};
    if (indexer.scanner)
      indexer.scanner->scan(writer, docs);
    else
      scan_lexical(*indexer.tokenizer, writer, docs);
    if (dense) embed_passages(*dense, writer, 0, docs);
    writer.commit();
  }
  index::IndexReader reader = index::IndexReader::open(w.out);
  fs::path dir = guard.path;
  guard.path.clear();  // owned by the ContextIndex from here
  auto out = std::make_unique<ContextIndex>(std::move(dir), std::move(reader));
  if (out->reader.dense()) out->dense.emplace(*out->reader.dense(), out->reader.lexical());
  out->index_s = seconds_since(t);
  return out;
}

// The evidence of `question`: the same retrieval and assembly as `s3attn ask`.
struct EvidenceResult {
  std::string text;
  uint32_t tokens = 0;       // in the index's tokens
  size_t answer_tokens = 0;  // in the answer model's tokens (with --answer-model)
  double retrieval_s = 0;
};

// `answer_tokenizer`: with --answer-model, the budget counts that model's tokens (fit_selection).
EvidenceResult select_evidence(const QuestionEncoder* questions, const DenseEncoder* dense,
                               const ContextIndex& ci, const std::string& question,
                               const retrieval::RetrievalOptions& ropt,
                               const Tokenizer* answer_tokenizer) {
  const auto t = Clock::now();
  const retrieval::TokenRange doc{0, ci.reader.n_tokens()};
  const DenseRetrieval dense_side{dense, ci.dense ? &*ci.dense : nullptr};
  const QuestionRetrieval q = retrieve_for_question(questions, ci.reader, ci.postings, ci.lexical,
                                                    question, doc, ropt, dense_side);
  retrieval::Selection selection = q.result.selection;
  EvidenceResult r;
  if (answer_tokenizer) {
    const auto measure = [&](const retrieval::Selection& sel) {
      return EvidenceCost{count_evidence_tokens(ci.reader, sel.ranges, *answer_tokenizer), 0};
    };
    const uint32_t budget = ropt.budget.budget;
    selection = fit_selection(q.result, ropt.method, doc, ropt.budget, std::max(doc.size(), budget),
                              budget, measure);
    r.answer_tokens = measure(selection).answer_tokens;
  }
  r.text = evidence_context(ci.reader, selection.ranges, ropt.context);
  r.tokens = selection.n_tokens;
  r.retrieval_s = seconds_since(t);
  return r;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

}  // namespace

std::string format_longbench_prompt(const std::string& templ, const std::string& context,
                                    const std::string& input) {
  std::string out;
  out.reserve(templ.size() + context.size() + input.size());
  for (size_t i = 0; i < templ.size();) {
    if (templ.compare(i, 9, "{context}") == 0) {
      out += context;
      i += 9;
    } else if (templ.compare(i, 7, "{input}") == 0) {
      out += input;
      i += 7;
    } else if (templ[i] == '{' || templ[i] == '}') {
      throw Error(
          "a LongBench template has a brace other than {context} / {input}; it is not supported");
    } else {
      out += templ[i++];
    }
  }
  return out;
}

bool longbench_task_uses_chat(const std::string& task) {
  return !no_chat_tasks().contains(task);
}

MaxLength longbench_max_length(int window) {
  // LongBench's config/model2maxlen.json gives every 4K-window model 3,500 prompt tokens, every
  // 8K one 7,500, every 16K one 15,500 and every 32K one 31,500.
  switch (window) {
    case 4096:
      return {3500, "model2maxlen: 3,500 for a 4K window"};
    case 8192:
      return {7500, "model2maxlen: 7,500 for an 8K window"};
    case 16384:
      return {15500, "model2maxlen: 15,500 for a 16K window"};
    case 32768:
      return {31500, "model2maxlen: 31,500 for a 32K window"};
    default:
      break;
  }
  // Other windows: the table's own pattern, 1,000 per 1,024 tokens of window less 500, while it
  // leaves room for the longest answer (512) and a chat template; else the window less 692 (which
  // is what that room costs at 8K), or half the window for windows too small for that.
  const int64_t pattern = static_cast<int64_t>(window) * 1000 / 1024 - 500;
  if (pattern >= 2 && pattern + 692 <= window)
    return {static_cast<int>(pattern),
            "not in model2maxlen: window x 1000/1024 - 500, its pattern"};
  if (window - 692 >= window / 2) return {window - 692, "not in model2maxlen: window - 692"};
  return {std::max(2, window / 2),
          "not in model2maxlen: half the window (too small for 692 tokens of room)"};
}

namespace {

// s3attn's own L-Eval prompts (not L-Eval's scripts, which this repository does not carry):
// multiple choice asks for the letters only, open-ended questions for a short answer.
constexpr const char* kLevalExamTemplate =
    "Now you are given a very long document. Please follow the instruction based on this document. "
    "For "
    "multi-choice questions, there could be a single correct option or multiple correct options. "
    "Please only "
    "provide the letter corresponding to the answer (like A or AB) when answering.\n\nDocument is "
    "as follows. "
    "{context}\n\nQuestion: {input}\nAnswer:";
constexpr const char* kLevalOpenTemplate =
    "Now you are given a very long document. Please follow the instruction based on this document. "
    "Answer "
    "concisely.\n\nDocument is as follows. {context}\n\nInstruction: {input}\nAnswer:";
constexpr int kLevalExamMaxNew = 16;
constexpr int kLevalOpenMaxNew = 256;

struct TaskPlan {
  std::string name;
  std::string templ;
  int dataset_max_new = 0;
  fs::path file;
  std::vector<Sample> samples;
};

void validate_options(const LongBenchOptions& o) {
  o.retrieval.validate();
  if (o.limit && *o.limit < 1) throw UsageError("--limit must be at least 1");
  if (o.max_length && *o.max_length < 2) throw UsageError("--max-length must be at least 2");
  if (o.max_new_tokens_cap && *o.max_new_tokens_cap < 1)
    throw UsageError("--max-new-tokens-cap must be at least 1");
  if (o.world < 1 || o.rank < 0 || o.rank >= o.world)
    throw UsageError("bad shard rank / world size");
  if (o.suite != "longbench" && o.suite != "leval")
    throw UsageError("--suite: '" + o.suite + "' is not one of longbench, leval");
}

struct TaskSet {
  std::vector<TaskPlan> plans;
  nlohmann::json config_meta;  // LongBench: the config's directory and hashes; null for L-Eval
};

// LongBench: the tasks of --tasks (or every task of the config with a data file), their
// templates and max lengths from the config, and the config's identity for the manifest.
TaskSet plan_longbench_tasks(const LongBenchOptions& o) {
  std::vector<TaskPlan> plans;
  if (o.config.empty()) throw UsageError("--config is required for LongBench");
  if (!fs::is_directory(o.config))
    throw Error("--config " + o.config.string() + " is not a directory");
  const fs::path prompt_file = o.config / "dataset2prompt.json",
                 maxlen_file = o.config / "dataset2maxlen.json";
  const nlohmann::json prompts = read_json_file(prompt_file);
  const nlohmann::json maxlens = read_json_file(maxlen_file);
  std::string known;
  for (const auto& [name, value] : prompts.items()) {
    if (!value.is_string())
      throw Error(prompt_file.string() + ": the template of " + name + " is not a string");
    known += (known.empty() ? "" : ", ") + name;
  }
  std::vector<std::string> tasks;
  if (o.tasks.size() == 1 && o.tasks[0] == "all") {
    for (const auto& [name, value] : prompts.items())
      if (fs::is_regular_file(o.data / (name + ".jsonl"))) tasks.push_back(name);
    if (tasks.empty())
      throw Error("--tasks all: no <task>.jsonl of a known task in " + o.data.string());
  } else {
    for (const std::string& t : o.tasks) {
      if (!prompts.contains(t))
        throw UsageError("--tasks: unknown task '" + t + "' (known: " + known + ")");
      if (std::find(tasks.begin(), tasks.end(), t) == tasks.end()) tasks.push_back(t);
    }
  }
  for (const std::string& t : tasks) {
    if (!maxlens.contains(t) || !maxlens[t].is_number_integer() || maxlens[t].get<int>() < 1)
      throw Error(maxlen_file.string() + " has no positive max length for " + t);
    const fs::path file = o.data / (t + ".jsonl");
    if (!fs::is_regular_file(file)) throw Error("missing data file " + file.string());
    TaskPlan plan{t, prompts[t].get<std::string>(), maxlens[t].get<int>(), file, {}};
    (void)format_longbench_prompt(plan.templ, "", "");  // refuses other braces early
    plans.push_back(std::move(plan));
  }
  const nlohmann::json config_meta = {{"dir", fs::absolute(o.config).string()},
                                      {"dataset2prompt_xxh3_64", xxh3_file(prompt_file)},
                                      {"dataset2maxlen_xxh3_64", xxh3_file(maxlen_file)}};
  return {std::move(plans), config_meta};
}

// L-Eval: one task per .jsonl file of --data (--tasks names them with or without "leval_").
TaskSet plan_leval_tasks(const LongBenchOptions& o) {
  std::vector<TaskPlan> plans;
  std::vector<std::string> known;
  for (const auto& entry : fs::directory_iterator(o.data))
    if (entry.is_regular_file() && entry.path().extension() == ".jsonl")
      known.push_back(entry.path().stem().string());
  std::sort(known.begin(), known.end());
  std::string known_text;
  for (const std::string& k : known)
    known_text += (known_text.empty() ? "leval_" : ", leval_") + k;
  std::vector<std::string> stems;
  if (o.tasks.size() == 1 && o.tasks[0] == "all") {
    stems = known;
    if (stems.empty()) throw Error("--tasks all: no .jsonl file in " + o.data.string());
  } else {
    for (std::string t : o.tasks) {
      if (t.rfind("leval_", 0) == 0) t = t.substr(6);
      if (std::find(known.begin(), known.end(), t) == known.end())
        throw UsageError("--tasks: no L-Eval file for '" + t + "' in " + o.data.string() +
                         " (known: " + known_text + ")");
      if (std::find(stems.begin(), stems.end(), t) == stems.end()) stems.push_back(t);
    }
  }
  for (const std::string& stem : stems)
    plans.push_back({"leval_" + stem, "", 0, o.data / (stem + ".jsonl"), {}});
  return {std::move(plans), nullptr};
}

// Reads each task's samples (L-Eval: its template and max new tokens follow the file's kind of
// evaluation), the first `limit` of them.
void load_samples(std::vector<TaskPlan>& plans, bool leval, const std::optional<int>& limit) {
  for (TaskPlan& plan : plans) {
    plan.samples = leval ? read_leval_file(plan.file) : read_task_file(plan.file);
    if (leval) {
      const bool exam = !plan.samples.empty() && plan.samples[0].evaluation == "exam";
      plan.templ = exam ? kLevalExamTemplate : kLevalOpenTemplate;
      plan.dataset_max_new = exam ? kLevalExamMaxNew : kLevalOpenMaxNew;
    }
    if (limit && plan.samples.size() > static_cast<size_t>(*limit))
      plan.samples.resize(static_cast<size_t>(*limit));
  }
}

// Each sample's retrieval question (and control question) runs through the index's model in one
// forward pass: refuses, before the first sample, questions longer than that model's window.
// (bm25 and dense keep the same bound with a lexical-only context index: the same samples run.)
void check_questions_fit(const std::vector<TaskPlan>& plans, const Tokenizer& index_tok,
                         int window) {
  for (const TaskPlan& plan : plans) {
    const std::string instruction = trim(format_longbench_prompt(plan.templ, "", ""));
    for (const Sample& sample : plan.samples) {
      const std::string& question = trim(sample.input).empty() ? instruction : sample.input;
      for (const auto& [what, text] :
           {std::pair<const char*, const std::string*>{"retrieval question (the input)", &question},
            {"control_question", &sample.control_question}}) {
        if (const size_t n = index_tok.encode(*text).size(); n > static_cast<size_t>(window))
          throw Error(plan.file.string() + ": sample " + sample.id + ": its " + what + " has " +
                      std::to_string(n) + " tokens, more than the model's window of " +
                      std::to_string(window) + " tokens");
      }
    }
  }
}

// An existing run in --out resumes only when what identifies it matches `manifest` (runs from
// before a key was recorded used its default); returns its tasks' entries, to merge.
nlohmann::json resume_task_meta(const nlohmann::json& manifest, const fs::path& manifest_path,
                                const fs::path& out, const std::string& model_fingerprint) {
  if (!fs::exists(manifest_path)) return nlohmann::json::object();
  const nlohmann::json old = read_json_file(manifest_path);
  for (const char* key :
       {"suite", "method", "sae", "index_model", "dense_model", "max_length", "max_new_tokens_cap",
        "budget", "passage_words", "retrieval", "world_size"}) {
    nlohmann::json a = old.value(key, nlohmann::json()), b = manifest.value(key, nlohmann::json());
    if (std::string(key) == "suite" && a.is_null()) a = "longbench";
    if (std::string(key) == "passage_words" && a.is_null() && old.contains("budget")) a = 100;
    if (a != b)
      throw Error(out.string() + " holds a run with another " + key + " (" + a.dump() + " there, " +
                  b.dump() + " now); use another --out");
  }
  if (old.value("model", nlohmann::json::object()).value("fingerprint", "") != model_fingerprint)
    throw Error(out.string() + " holds a run of another model; use another --out");
  return old.contains("tasks") && old["tasks"].is_object() ? old["tasks"]
                                                           : nlohmann::json::object();
}

}  // namespace

namespace {

// What every task of a run shares: the options, the models and the retrieval machinery, the
// protocol's numbers. References into run_longbench's locals, which outlive the tasks.
struct RunContext {
  const LongBenchOptions& o;
  bool leval = false;
  bool retrieve = false;  // a method other than full: each context is indexed
  fs::path tmp_parent;    // the context indexes' parent
  const Model& model;     // prompted, answers (the answer model with --answer-model)
  bool answer_model = false;
  ContextIndexer indexer;                      // how each context is indexed (retrieve only)
  const QuestionEncoder* questions = nullptr;  // the SAE methods
  const DenseEncoder* dense = nullptr;         // the dense methods
  int max_length = 0;
  int32_t newline_id = 0;
  std::string gpu;  // the device's name, in every row

  const ModelInfo& info() const { return model.info(); }
  const Tokenizer& tok() const { return model.tokenizer(); }
};

// A prompt cut to max_length, plus the chat template (and a few tokens where the two halves are
// re-tokenized at the seam), must fit the model's window; refused before the first sample.
void check_prompt_fits(const ModelInfo& info, const Tokenizer& tok, int max_length) {
  int chat_overhead = 0;
  if (info.chat_template)
    chat_overhead =
        static_cast<int>(encode_prompt(info, tok, apply_chat_template(info, "", true)).size());
  if (static_cast<int64_t>(max_length) + chat_overhead + 8 > info.max_position_embeddings)
    throw UsageError("--max-length " + std::to_string(max_length) + " plus the chat template (" +
                     std::to_string(chat_overhead) +
                     " tokens) does not fit the model's window of " +
                     std::to_string(info.max_position_embeddings) + " tokens");
}

// The token of a newline: samsum's extra stop.
int32_t newline_token(const Tokenizer& tok) {
  const std::vector<int32_t> ids = tok.encode("\n");
  if (ids.empty()) throw Error("the tokenizer gives no token for a newline");
  return ids.back();
}

// One task's settings: what it generates and whether its prompt goes through the chat template.
struct TaskSettings {
  int max_new = 0;
  bool chat = false;
};

TaskSettings task_settings(const RunContext& ctx, const TaskPlan& plan) {
  TaskSettings t;
  t.max_new = plan.dataset_max_new;
  if (ctx.o.max_new_tokens_cap) t.max_new = std::min(t.max_new, *ctx.o.max_new_tokens_cap);
  t.chat =
      (ctx.leval || longbench_task_uses_chat(plan.name)) && ctx.info().chat_template.has_value();
  return t;
}

// The manifest's entry of one task.
nlohmann::json task_manifest(const RunContext& ctx, const TaskPlan& plan, const TaskSettings& t) {
  nlohmann::json meta = {
      {"chat", t.chat},
      {"max_new_tokens", t.max_new},
      {"extra_stop_ids",
       plan.name == "samsum" ? std::vector<int32_t>{ctx.newline_id} : std::vector<int32_t>{}},
      {"template_xxh3_64", xxh3_text(plan.templ)},
      {"data_file", fs::absolute(plan.file).string()},
      {"data_xxh3_64", xxh3_file(plan.file)},
      {"samples", plan.samples.size()}};
  if (ctx.leval) {
    meta["template"] = plan.templ;  // s3attn's own (docs/longbench.md)
    meta["default_max_new_tokens"] = plan.dataset_max_new;
    meta["evaluation"] = plan.samples.empty() ? nlohmann::json() : plan.samples[0].evaluation;
  } else {
    meta["dataset2maxlen"] = plan.dataset_max_new;
  }
  return meta;
}

// One sample ready to generate: its prompt, and what its row records besides the answer.
struct Prepared {
  const Sample* sample = nullptr;
  Clock::time_point start;
  std::vector<int32_t> ids;
  size_t raw_tokens = 0;
  bool truncated = false;
  nlohmann::json evidence_tokens, evidence_recall, control_evidence_recall;
  std::string evidence;  // --record-evidence: the evidence text placed in the prompt
  double index_s = 0, retrieval_s = 0, prepare_s = 0;
};

// Prepares the samples of one task in order (index, retrieval, prompt), keeping the index of the
// current context for the next sample (L-Eval: many questions per document).
class SamplePreparer {
 public:
  SamplePreparer(const RunContext& ctx, const TaskPlan& plan, const TaskSettings& settings)
      : ctx_(ctx),
        plan_(plan),
        settings_(settings),
        instruction_(trim(format_longbench_prompt(plan.templ, "", ""))) {}

  Prepared prepare(const Sample* s) {
    Prepared p;
    p.sample = s;
    p.start = Clock::now();
    std::string context = s->context;
    if (ctx_.retrieve) {
      context.clear();
      p.evidence_tokens = 0;
      if (!s->context.empty()) {
        const ContextIndex& ci = context_index(*s, p.index_s);
        const std::string question = trim(s->input).empty() ? instruction_ : s->input;
        const EvidenceResult ev = evidence(ci, question);
        context = ev.text;
        if (ctx_.o.record_evidence) p.evidence = ev.text;
        p.evidence_tokens =
            ctx_.answer_model ? nlohmann::json(ev.answer_tokens) : nlohmann::json(ev.tokens);
        p.retrieval_s = ev.retrieval_s;
      }
    } else {
      p.evidence_tokens = ctx_.tok().encode(context).size();
    }
    const Fitted fitted = fit_prompt(format_longbench_prompt(plan_.templ, context, s->input));
    p.raw_tokens = fitted.raw_tokens;
    p.truncated = fitted.truncated;
    p.ids = encode_prompt(ctx_.info(), ctx_.tok(),
                          apply_chat_template(ctx_.info(), fitted.prompt, settings_.chat));
    p.prepare_s = seconds_since(p.start);
    if (!s->needles.empty()) record_recall(*s, fitted.prompt, p);  // after the timings
    return p;
  }

 private:
  // pred.py's truncation: decode(ids[:half]) + decode(ids[-half:]), special tokens skipped.
  struct Fitted {
    std::string prompt;
    size_t raw_tokens = 0;
    bool truncated = false;
  };
  Fitted fit_prompt(std::string prompt) const {
    const ModelInfo& info = ctx_.info();
    const std::vector<int32_t> raw = encode_prompt(info, ctx_.tok(), prompt);
    Fitted f{std::move(prompt), raw.size(), static_cast<int>(raw.size()) > ctx_.max_length};
    if (f.truncated) {
      const size_t half = static_cast<size_t>(ctx_.max_length / 2);
      const std::span<const int32_t> ids(raw);
      f.prompt = decode_text(info, ctx_.tok(), ids.first(half)) +
                 decode_text(info, ctx_.tok(), ids.last(half));
    }
    return f;
  }

  // The index of the sample's context: the cached one, or a new one (the previous one removed
  // first); `index_s` gets the time a new one took.
  const ContextIndex& context_index(const Sample& s, double& index_s) {
    if (!cached_ || cached_doc_ != s.doc) {
      cached_.reset();
      cached_ =
          index_context(ctx_.indexer, ctx_.dense, ctx_.tmp_parent, s.context, ctx_.o.passage_words);
      cached_doc_ = s.doc;
      index_s = cached_->index_s;
    }
    return *cached_;
  }

  EvidenceResult evidence(const ContextIndex& ci, const std::string& question) const {
    return select_evidence(ctx_.questions, ctx_.dense, ci, question, ctx_.o.retrieval,
                           ctx_.answer_model ? &ctx_.tok() : nullptr);
  }

  // Bookkeeping of the synthetic tasks, not part of the method: whether the needles are in the
  // prompt, and in the prompt that a control question's evidence would have given.
  void record_recall(const Sample& s, const std::string& prompt, Prepared& p) const {
    const std::string bare = format_longbench_prompt(plan_.templ, "", s.input);
    p.evidence_recall = needle_recall(prompt, bare, s.needles);
    if (ctx_.retrieve && !s.context.empty() && !s.control_question.empty()) {
      const EvidenceResult control = evidence(*cached_, s.control_question);  // this sample's
      const Fitted c = fit_prompt(format_longbench_prompt(plan_.templ, control.text, s.input));
      p.control_evidence_recall = needle_recall(c.prompt, bare, s.needles);
    }
  }

  const RunContext& ctx_;
  const TaskPlan& plan_;
  const TaskSettings& settings_;
  const std::string instruction_;  // the retrieval question of samples without input
  std::unique_ptr<ContextIndex> cached_;
  size_t cached_doc_ = 0;
};

// The row of one generated sample.
nlohmann::json result_row(const RunContext& ctx, const Prepared& p, const GenerationResult& g,
                          size_t group_size, double generate_s, long long peak) {
  const Sample* s = p.sample;
  nlohmann::json row = {{"pred", g.text},
                        {"answers", s->answers},
                        {"all_classes", s->all_classes},
                        {"length", s->length},
                        {"_id", s->id},
                        {"prompt_tokens", p.ids.size()},
                        {"raw_prompt_tokens", p.raw_tokens},
                        {"truncated", p.truncated},
                        {"evidence_tokens", p.evidence_tokens},
                        {"new_tokens", g.tokens.size()},
                        {"stop_reason", g.stop_reason},
                        {"batch", group_size},
                        {"timings",
                         {{"index_s", p.index_s},
                          {"retrieval_s", p.retrieval_s},
                          {"prefill_s", g.timings.prefill_s},
                          {"decode_s", g.timings.decode_s},
                          {"total_s", p.prepare_s + generate_s}}},
                        {"peak_gpu_bytes", peak},
                        {"commit", commit()},
                        {"device_name", ctx.gpu}};
  if (ctx.leval) row["evaluation"] = s->evaluation;
  if (ctx.o.record_evidence) {
    row["input"] = s->input;  // the question, to read the evidence against
    if (ctx.retrieve) row["evidence"] = p.evidence;
  }
  if (!s->needles.empty()) {
    row["evidence_recall"] = p.evidence_recall;
    row["control_evidence_recall"] = p.control_evidence_recall;
  }
  return row;
}

// The models of a run, loaded once. `--answer-model`: the index's model (and SAE) retrieve, the
// answer model is prompted and answers; the index's model is loaded only when a context is indexed
// with the SAE. Built in place (the question encoder refers to the scanner), so it never moves.
struct RunModels {
  std::optional<Model> answer, index;
  // A lexical-only context index needs only the index model's tokenizer: without a model loaded
  // for it (--answer-model answers), its model.json and tokenizer.json alone.
  std::optional<ModelInfo> lexical_info;
  std::optional<Tokenizer> lexical_tokenizer;
  std::unique_ptr<Scanner> scanner;          // with `sae_dir`: the SAE scan of each context
  std::optional<QuestionEncoder> questions;  // on the scanner's SAE
  std::optional<DenseEncoder> dense;

  RunModels(const LongBenchOptions& o, const std::optional<fs::path>& sae_dir, bool retrieve,
            bool need_dense) {
    const ModelLoadOptions load{o.device, o.dtype};
    if (o.answer_model) {
      try {
        answer.emplace(Model::load(*o.answer_model, load));
      } catch (const Error& e) {
        throw Error(std::string("--answer-model: ") + e.what());
      }
    }
    if (sae_dir || !answer) index.emplace(Model::load(o.model, load));
    if (retrieve && !index) {
      lexical_info.emplace(ModelInfo::load(o.model));
      lexical_tokenizer.emplace(Tokenizer::from_file(lexical_info->tokenizer_file()));
    }
    if (sae_dir) {
      ScanOptions scan = o.scan;  // as `s3attn index`: the default chunk within the window
      if (o.fit_chunk_to_window) scan.fit_chunk_to_window(index->info());
      scanner = std::make_unique<Scanner>(*index, *sae_dir, scan);
      questions.emplace(*scanner);
    }
    if (need_dense) dense.emplace(DenseEncoder::load(*o.dense_model, o.device));
  }
  RunModels(const RunModels&) = delete;
  RunModels& operator=(const RunModels&) = delete;

  const Model& model() const { return answer ? *answer : *index; }  // prompted, answers
  const ModelInfo* index_info() const {
    return index ? &index->info() : lexical_info ? &*lexical_info : nullptr;
  }
  const Tokenizer* index_tokenizer() const {
    return index ? &index->tokenizer() : lexical_tokenizer ? &*lexical_tokenizer : nullptr;
  }
};

// What identifies a run besides its context: the SAE scan (none without), the index's model (with
// --answer-model), LongBench's config and where the max length came from.
struct RunIdentity {
  const Scanner* scanner = nullptr;
  fs::path sae_dir;
  const ModelInfo* index_info = nullptr;
  nlohmann::json config;
  std::string max_length_rule;
};

// The run's manifest without its tasks: compared with an existing one to resume.
nlohmann::json run_manifest(const RunContext& ctx, const RunIdentity& id) {
  const LongBenchOptions& o = ctx.o;
  const ModelInfo& info = ctx.info();
  nlohmann::json manifest = {
      {"suite", o.suite},
      {"method", std::string(retrieval::method_name(o.retrieval.method))},
      {"model",
       {{"path", fs::absolute(info.dir).string()},
        {"fingerprint", info.fingerprint},
        {"family", info.family},
        {"max_position_embeddings", info.max_position_embeddings}}},
      {"index_model", ctx.retrieve && ctx.answer_model
                          ? nlohmann::json{{"path", fs::absolute(o.model).string()},
                                           {"fingerprint", id.index_info->fingerprint}}
                          : nlohmann::json()},
      {"sae", id.scanner ? nlohmann::json{{"path", fs::absolute(id.sae_dir).string()},
                                          {"fingerprint", id.scanner->sae_fingerprint()},
                                          {"scan", to_json(id.scanner->metadata().scan)}}
                         : nlohmann::json()},
      {"s3attn_version", version()},
      {"s3attn_commit", commit()},
      {"tokenizer",
       {{"file", info.tokenizer_file().string()}, {"xxh3_64", xxh3_file(info.tokenizer_file())}}},
      {"hash", "xxh3_64"},
      {"max_length", ctx.max_length},
      {"max_length_rule", id.max_length_rule},
      {"truncation",
       "middle: first and last max_length/2 prompt tokens, decoded without special tokens"},
      {"decoding", "greedy"},
      {"stop_ids", info.stop_token_ids},
      {"newline_stop_id", ctx.newline_id},
      {"newline_stop_tasks", {"samsum"}},
      {"first_token_not_stop_tasks", {"samsum"}},
      {"max_new_tokens_cap",
       o.max_new_tokens_cap ? nlohmann::json(*o.max_new_tokens_cap) : nlohmann::json()},
      {"config", id.config},
      {"device", ctx.model.device().name},
      {"device_name", ctx.gpu},
      {"dtype", dtype_name(ctx.model.dtype())},
      {"world_size", o.world},
      {"limit", o.limit ? nlohmann::json(*o.limit) : nlohmann::json()},
      {"batch", o.batch},
      {"decode_backend", enum_name(kDecodeBackendNames, o.decode_backend)},
  };
  if (ctx.retrieve) {
    // What each sample's context index holds: SAE features (the SAE scan) or, lexical-only, its
    // tokens and passages only.
    manifest["context_index"] = id.scanner ? "sae-features" : index::kLexicalOnlyContent;
    manifest["budget"] = o.retrieval.budget.budget;
    manifest["passage_words"] = o.passage_words;
    manifest["retrieval"] = o.retrieval;
    manifest["retrieval_question"] =
        "the sample's input; the template's instruction text when the input is empty";
  }
  if (ctx.dense) manifest["dense_model"] = ctx.dense->info().identity();
  if (!o.label.empty()) manifest["label"] = o.label;
  return manifest;
}

// Runs this rank's unfinished samples of one task, appending a row per sample to its file, in
// groups of --batch (one batched decode per group, core/runtime/generation.h); returns the task's
// summary.
nlohmann::json run_task(const RunContext& ctx, const TaskPlan& plan, const TaskSettings& settings,
                        const LongBenchCallbacks& callbacks) {
  const LongBenchOptions& o = ctx.o;
  GenerationOptions gen;
  gen.max_new_tokens = settings.max_new;
  gen.decode_backend = o.decode_backend;
  if (plan.name == "samsum") {  // pred.py: eos_token_id=[eos, newline], min_length=context_length+1
    gen.extra_stop_ids = {ctx.newline_id};
    gen.first_token_not_stop = true;
  }
  const std::string name = o.world == 1 ? plan.name + ".jsonl"
                                        : plan.name + ".rank" + std::to_string(o.rank) + "-of" +
                                              std::to_string(o.world) + ".jsonl";
  const fs::path file = o.out / name;
  const std::set<std::string> done = resume_file(file);
  std::ofstream out(file, std::ios::binary | std::ios::app);
  if (!out) throw Error("cannot write " + file.string());
  out.flush();

  std::vector<const Sample*> todo;
  uint64_t skipped = 0;
  for (size_t i = 0; i < plan.samples.size(); ++i) {
    if (static_cast<int>(i % static_cast<size_t>(o.world)) != o.rank) continue;
    if (done.contains(plan.samples[i].id))
      ++skipped;
    else
      todo.push_back(&plan.samples[i]);
  }
  if (callbacks.task_start) callbacks.task_start(plan.name, todo.size());
  SamplePreparer preparer(ctx, plan, settings);
  uint64_t written = 0;
  for (size_t first = 0; first < todo.size(); first += static_cast<size_t>(o.batch)) {
    const size_t last = std::min(todo.size(), first + static_cast<size_t>(o.batch));
    reset_peak_device_memory(ctx.model.device());
    std::vector<Prepared> group;
    std::vector<std::vector<int32_t>> prompts;
    for (size_t i = first; i < last; ++i) {
      group.push_back(preparer.prepare(todo[i]));
      prompts.push_back(group.back().ids);
    }
    const auto gen_start = Clock::now();
    const std::vector<GenerationResult> results = generate_batch(ctx.model, prompts, gen);
    const double generate_s = seconds_since(gen_start);
    const long long peak = peak_device_memory(ctx.model.device());
    for (size_t i = 0; i < group.size(); ++i) {
      const nlohmann::json row =
          result_row(ctx, group[i], results[i], group.size(), generate_s, peak);
      out << row.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      out.flush();
      if (!out) throw Error("cannot write " + file.string());
      ++written;
      if (callbacks.sample_done) callbacks.sample_done(written);
    }
  }
  if (callbacks.task_end) callbacks.task_end();
  return {{"file", file.string()}, {"written", written}, {"skipped", skipped}};
}

}  // namespace

nlohmann::json run_longbench(const LongBenchOptions& o, const LongBenchCallbacks& callbacks) {
  validate_options(o);
  const bool leval = o.suite == "leval";
  const retrieval::Method method = o.retrieval.method;
  const bool retrieve = method != retrieval::Method::kFull;

  // Everything that can be checked before loading the model.
  if (!fs::is_directory(o.data)) throw Error("--data " + o.data.string() + " is not a directory");
  TaskSet task_set = leval ? plan_leval_tasks(o) : plan_longbench_tasks(o);
  if (task_set.plans.empty()) throw UsageError("--tasks: no task given");
  load_samples(task_set.plans, leval, o.limit);
  const std::vector<TaskPlan>& plans = task_set.plans;
  const nlohmann::json& config_meta = task_set.config_meta;
  const bool need_dense = method_needs_dense(method);
  if (need_dense && !o.dense_model)
    throw UsageError("method " + std::string(retrieval::method_name(method)) +
                     " embeds each context's passages: pass --dense-model DIR "
                     "(scripts/get_model.sh all-minilm-l6-v2)");
  // The SAE scan indexes each context for the SAE methods, and for the others when --sae is given
  // (the same evidence; for comparisons). Otherwise bm25 and dense index each context
  // lexical-only: tokenized, no model forward.
  const bool sae_scan = retrieve && (method_needs_sae(method) || o.sae.has_value());
  fs::path sae_dir;
  if (sae_scan) {
    sae_dir = o.sae ? *o.sae : o.model / "sae";
    if (!fs::is_directory(sae_dir))
      throw Error("method " + std::string(retrieval::method_name(method)) +
                  " indexes each context with an SAE: " + sae_dir.string() +
                  " is missing; pass --sae");
  }

  fs::create_directories(o.out);
  const fs::path tmp_parent = o.out / ".tmp";
  if (retrieve) {
    fs::create_directories(tmp_parent);
    remove_stale_temp_dirs(tmp_parent, "lb-");
  }

  const RunModels models(o, sae_scan ? std::optional<fs::path>(sae_dir) : std::nullopt, retrieve,
                         need_dense);
  const Model& model = models.model();
  const ModelInfo& info = model.info();
  const MaxLength rule = longbench_max_length(info.max_position_embeddings);
  const int max_length = o.max_length ? *o.max_length : rule.max_length;
  check_prompt_fits(info, model.tokenizer(), max_length);
  // Each sample's retrieval question (and control question) runs through the index's model in one
  // forward pass: refuse, before the first sample, questions longer than that model's window.
  // (bm25 and dense keep the same bound with a lexical-only context index: the same samples run.)
  if (retrieve)
    check_questions_fit(plans, *models.index_tokenizer(),
                        models.index_info()->max_position_embeddings);
  const RunContext ctx{
      .o = o,
      .leval = leval,
      .retrieve = retrieve,
      .tmp_parent = tmp_parent,
      .model = model,
      .answer_model = models.answer.has_value(),
      .indexer = {models.scanner.get(), models.index_info(), models.index_tokenizer()},
      .questions = models.questions ? &*models.questions : nullptr,
      .dense = models.dense ? &*models.dense : nullptr,
      .max_length = max_length,
      .newline_id = newline_token(model.tokenizer()),
      .gpu = device_name(model.device())};
  const nlohmann::json manifest_base =
      run_manifest(ctx, {.scanner = models.scanner.get(),
                         .sae_dir = sae_dir,
                         .index_info = models.index_info(),
                         .config = config_meta,
                         .max_length_rule = o.max_length ? "--max-length" : rule.rule});
  const fs::path manifest_path = o.out / "manifest.json";
  nlohmann::json manifest = manifest_base;
  nlohmann::json task_meta = resume_task_meta(manifest, manifest_path, o.out, info.fingerprint);
  std::vector<TaskSettings> settings;
  for (const TaskPlan& plan : plans) {
    settings.push_back(task_settings(ctx, plan));
    task_meta[plan.name] = task_manifest(ctx, plan, settings.back());
  }
  manifest["tasks"] = task_meta;
  write_file_atomic(manifest_path, manifest.dump(2) + "\n", true);

  nlohmann::json summary = {{"out", o.out.string()}, {"tasks", nlohmann::json::object()}};
  for (size_t ti = 0; ti < plans.size(); ++ti)
    summary["tasks"][plans[ti].name] = run_task(ctx, plans[ti], settings[ti], callbacks);
  // The parent of the context indexes goes when empty; a sharded run leaves it, since another rank
  // may be between two samples (and about to create its next index there).
  if (retrieve && o.world == 1) ::rmdir(tmp_parent.c_str());
  return summary;
}

}  // namespace s3
