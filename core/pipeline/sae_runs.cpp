#include "core/pipeline/sae_runs.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "core/base/dtype.h"
#include "core/base/error.h"
#include "core/base/file_read.h"
#include "core/base/fs_util.h"
#include "core/runtime/chunk_window.h"
#include "core/runtime/model_torch.h"
#include "sae/device.h"
#include "sae/encoder.h"
#include "sae/evaluate.h"
#include "sae/shuffler.h"
#include "sae/trainer.h"
#include "sae/weights.h"

namespace s3 {
namespace fs = std::filesystem;

namespace {

constexpr const char* kStateFormat = "s3attn-sae-train-state";
constexpr int kStateVersion = 1;
constexpr uint64_t kMaxStateBytes = uint64_t{16} << 20;  // state.json is a few hundred bytes

std::string with_commas(uint64_t v) {
  const std::string digits = std::to_string(v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

// "name (N bytes[, field 'f'])" for one --corpus input; a directory sums its regular files.
std::string describe_input(const fs::path& input, const DocumentSource& source) {
  const fs::path normal = input.lexically_normal();
  std::string name = normal.filename().string();
  if (name.empty()) name = normal.parent_path().filename().string();
  std::error_code ec;
  if (fs::is_directory(input, ec)) {
    uint64_t bytes = 0, files = 0;
    for (const auto& entry : fs::recursive_directory_iterator(input, ec)) {
      if (!entry.is_regular_file() || entry.path().filename().string().starts_with(".")) continue;
      bytes += entry.file_size();
      ++files;
    }
    return name + "/ (" + with_commas(files) + " files, " + with_commas(bytes) + " bytes)";
  }
  const uint64_t bytes = fs::file_size(input, ec);
  const std::string ext = input.extension().string();
  const bool jsonl = source.format == "jsonl" ||
                     (source.format == "auto" && (ext == ".jsonl" || ext == ".ndjson"));
  return name + " (" + with_commas(ec ? 0 : bytes) + " bytes" +
         (jsonl ? ", field '" + source.doc_field + "'" : "") + ")";
}

// Whether chunks get the model's BOS in front (and its position dropped), as core/pipeline/scan.cpp
// does.
bool chunk_bos(const ModelInfo& info) {
  if (info.add_bos_token && !info.bos_token_id)
    throw Error(info.dir.string() + ": model.json says add_bos_token but gives no bos_token_id");
  return info.add_bos_token;
}

// --chunk of `sae train` and `sae eval`; the model's window bounds it further.
void check_chunk_range(int chunk) {
  if (chunk < 16 || chunk > (1 << 20))
    throw UsageError("--chunk must be between 16 and 1048576 tokens, not " + std::to_string(chunk));
}

void check_layers(const ModelInfo& info, const std::vector<int>& layers, const std::string& what) {
  for (int l : layers)
    if (l < 0 || l >= info.n_layers)
      throw UsageError(what + ": layer " + std::to_string(l) + " does not exist (the model has " +
                       std::to_string(info.n_layers) + " layers, 0-" +
                       std::to_string(info.n_layers - 1) + ")");
}

// The keys ([0]) and queries ([1]) of the real tokens of one chunk, per layer: q [T, Hq, D], k [T,
// Hkv, D]; the BOS position, if any, is dropped.
std::vector<std::pair<torch::Tensor, torch::Tensor>> tap_chunk(const Model& model,
                                                               std::vector<int32_t> ids, bool bos,
                                                               const std::vector<int64_t>& layers) {
  if (bos) ids.insert(ids.begin(), *model.info().bos_token_id);
  auto taps = tap(model, ids_tensor(model, ids), layers, /*rope=*/false);
  const int64_t skip = bos ? 1 : 0;
  for (auto& [q, k] : taps) {
    q = q[0].slice(0, skip);
    k = k[0].slice(0, skip);
  }
  return taps;
}

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// One pass over the corpus: the documents in a seeded random order, concatenated into one token
// stream, read in chunks from a random offset in [0, chunk). Chunks therefore have the real
// length, start anywhere inside documents and move between epochs. Our own Fisher-Yates and
// splitmix64 make the order the same on every platform, so a resumed run finds its place again.
class EpochStream {
 public:
  EpochStream(const SaeCorpus& corpus, uint64_t seed, int64_t epoch, int chunk) : corpus_(&corpus) {
    uint64_t rng = seed ^ (0xD1B54A32D192ED03ull * static_cast<uint64_t>(epoch + 1));
    order_.resize(corpus.docs.size());
    std::iota(order_.begin(), order_.end(), size_t{0});
    for (size_t i = order_.size(); i > 1; --i)
      std::swap(order_[i - 1], order_[splitmix64(rng) % i]);
    ends_.reserve(order_.size());
    uint64_t end = 0;
    for (size_t d : order_)
      ends_.push_back(end += corpus.docs[d].size());
    // Small corpora would lose a large share of an epoch to the skipped prefix: no offset there.
    const auto c = static_cast<uint64_t>(chunk);
    start_ = end >= 2 * c ? splitmix64(rng) % c : 0;
  }
  uint64_t start() const { return start_; }
  uint64_t total() const { return ends_.empty() ? 0 : ends_.back(); }

  // Tokens [offset, offset + n) of the stream.
  std::vector<int32_t> read(uint64_t offset, uint64_t n) const {
    std::vector<int32_t> out;
    out.reserve(n);
    size_t i =
        static_cast<size_t>(std::upper_bound(ends_.begin(), ends_.end(), offset) - ends_.begin());
    for (; out.size() < n && i < ends_.size(); ++i) {
      const std::vector<int32_t>& doc = corpus_->docs[order_[i]];
      const uint64_t begin = ends_[i] - doc.size();
      const uint64_t from = offset > begin ? offset - begin : 0;
      const uint64_t take = std::min<uint64_t>(doc.size() - from, n - out.size());
      out.insert(out.end(), doc.begin() + static_cast<ptrdiff_t>(from),
                 doc.begin() + static_cast<ptrdiff_t>(from + take));
    }
    return out;
  }

 private:
  const SaeCorpus* corpus_;  // a pointer, not a reference: a new epoch assigns a new stream
  std::vector<size_t> order_;
  std::vector<uint64_t> ends_;  // cumulative token ends, in stream order
  uint64_t start_ = 0;
};

// Where the key stream stands; saved with each checkpoint.
struct StreamState {
  int64_t epoch = 0;
  uint64_t offset = 0;  // next token of the epoch's stream; 0 = the epoch has not begun
  uint64_t tokens = 0;  // tokens run through the model so far
};

fs::path checkpoint_dir(const fs::path& out) {
  return out / "checkpoint";
}
fs::path state_path(const fs::path& out) {
  return checkpoint_dir(out) / "state.json";
}

// What must not change when a checkpoint is resumed.
nlohmann::json run_identity(const ModelInfo& info, const std::vector<int>& layers,
                            const SaeTrainOptions& o, int64_t d_in) {
  return {{"layers", layers}, {"head_mode", std::string(sae::to_string(o.head_mode))},
          {"d_in", d_in},     {"latents", o.trainer.latents},
          {"k", o.trainer.k}, {"model_fingerprint", info.fingerprint}};
}

// The identity of the key stream: if any of these differ on resume, the stream starts over.
nlohmann::json stream_identity(const SaeCorpus& corpus, const SaeTrainOptions& o) {
  return {{"corpus", corpus.description}, {"chunk", o.chunk}, {"seed", o.trainer.seed}};
}

// Writes every trainer to OUT/checkpoint/layer_<L>.step<S>.safetensors, then state.json
// (atomically, naming those files), then removes the files of older checkpoints. A crash at any
// point leaves a state.json that names complete files.
void write_checkpoint(const fs::path& out, const std::vector<int>& layers,
                      const std::vector<sae::Trainer>& trainers, nlohmann::json state) {
  const fs::path dir = checkpoint_dir(out);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir.string() + ": cannot create directory (" + ec.message() + ")");
  const int64_t step = trainers.front().steps_done();
  std::set<std::string> keep = {"state.json"};
  nlohmann::json files = nlohmann::json::object();
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string name =
        "layer_" + std::to_string(layers[i]) + ".step" + std::to_string(step) + ".safetensors";
    trainers[i].save_checkpoint(dir / name);
    files[std::to_string(layers[i])] = name;
    keep.insert(name);
  }
  state["step"] = step;
  state["files"] = files;
  write_file_atomic(dir / "state.json", state.dump(2) + "\n", /*fsync=*/true);
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!keep.count(name) && name.starts_with("layer_")) std::remove(entry.path().c_str());
  }
}

// A checkpoint's state.json, parsed and type-checked.
struct SavedState {
  int64_t step = 0;
  nlohmann::json identity;                   // run_identity() of the run that wrote it
  nlohmann::json stream;                     // stream_identity()
  std::map<std::string, std::string> files;  // layer -> file name
  StreamState position;
};

SavedState read_state(const fs::path& out) {
  const fs::path file = state_path(out);
  if (!fs::exists(file))
    throw Error("--resume: " + file.string() +
                " does not exist, so there is nothing to resume (train without --resume)");
  SavedState s;
  try {
    const nlohmann::json j =
        nlohmann::json::parse(read_regular_file(file, kMaxStateBytes, "training state"));
    if (!j.is_object() || j.value("format", "") != kStateFormat)
      throw DataCorruption(file.string(), "not an s3attn SAE training state");
    if (j.value("format_version", 0) > kStateVersion)
      throw DataCorruption(file.string(), "written by a newer s3attn: upgrade s3attn");
    j.at("step").get_to(s.step);
    s.identity = j.at("identity");
    s.stream = j.at("stream");
    j.at("files").get_to(s.files);
    j.at("epoch").get_to(s.position.epoch);
    j.at("offset").get_to(s.position.offset);
    j.at("tokens").get_to(s.position.tokens);
    if (!s.identity.is_object()) throw DataCorruption(file.string(), "'identity' is not an object");
  } catch (const nlohmann::json::exception& e) {
    throw DataCorruption(file.string(), std::string("malformed (") + e.what() + ")");
  }
  return s;
}

// Mean of the fresh FVUs of the last `window` steps: one batch's FVU is noisy at small batches.
double recent_fvu(const std::deque<std::pair<int64_t, double>>& fresh, int64_t step, int64_t window,
                  double fallback) {
  double sum = 0;
  int64_t n = 0;
  for (const auto& [s, fvu] : fresh)
    if (s > step - window) sum += fvu, ++n;
  return n ? sum / static_cast<double>(n) : fallback;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Corpus

SaeCorpus read_sae_corpus(const Model& model, const DocumentSource& source, uint64_t max_tokens) {
  const std::vector<Document> documents = read_documents(source);
  SaeCorpus corpus;
  for (const Document& doc : documents) {
    if (max_tokens > 0 && corpus.tokens >= max_tokens) break;
    std::vector<int32_t> ids = model.tokenizer().encode(doc.text);
    if (ids.empty()) continue;
    corpus.tokens += ids.size();
    corpus.docs.push_back(std::move(ids));
  }
  if (corpus.docs.empty()) throw Error("the corpus is empty: its documents have no tokens");
  for (const fs::path& input : source.inputs)
    corpus.description += (corpus.description.empty() ? "" : ", ") + describe_input(input, source);
  corpus.description += "; " + with_commas(corpus.docs.size()) + " documents, " +
                        with_commas(corpus.tokens) + " tokens";
  if (max_tokens > 0 && corpus.docs.size() < documents.size()) corpus.description += " (a prefix)";
  return corpus;
}

// ---------------------------------------------------------------------------------------------
// Training

void SaeTrainOptions::validate() const {
  for (int l : layers)
    if (l < 0)
      throw UsageError("--layers: layer numbers are non-negative, not " + std::to_string(l));
  trainer.validate();
  check_chunk_range(chunk);
  if (shuffle_buffer < 0 || (shuffle_buffer > 0 && shuffle_buffer < trainer.batch))
    throw UsageError("--shuffle-buffer must be 0 (auto) or at least --batch (" +
                     std::to_string(trainer.batch) + "), not " + std::to_string(shuffle_buffer));
  if (checkpoint_every < 0)
    throw UsageError("--checkpoint-every must be >= 0 (0 = no checkpoints)");
}

int64_t SaeTrainOptions::resolved_shuffle_buffer() const {
  return shuffle_buffer > 0 ? shuffle_buffer : 32 * trainer.batch;
}

namespace {

// --out: a directory that holds no SAE yet, nor (unless resuming) a checkpoint.
void check_train_out(const fs::path& out, bool resume) {
  std::error_code ec;
  if (fs::exists(out, ec) && !fs::is_directory(out, ec))
    throw Error("--out " + out.string() + " exists and is not a directory");
  if (resume) return;
  if (fs::exists(sae::sae_info_path(out), ec))
    throw Error("--out " + out.string() +
                " already holds an SAE: choose another --out, or delete it first");
  if (fs::exists(state_path(out), ec))
    throw Error("--out " + out.string() +
                " holds a checkpoint of an earlier run: pass --resume to continue it, or "
                "choose another --out");
}

// Where training starts: the trainers (one per layer), the corpus position and the step.
struct TrainStart {
  std::vector<sae::Trainer> trainers;
  StreamState stream;
  int64_t resumed_from = 0;
};

// --resume: the checkpoint's trainers and corpus position, after checking that it was made with
// this run's settings (`identity`) and has steps left.
TrainStart resume_trainers(const fs::path& out, const std::vector<int>& layers,
                           const SaeTrainOptions& options, int64_t d_in,
                           const nlohmann::json& identity, const nlohmann::json& stream_id) {
  const SavedState state = read_state(out);
  const std::string where = state_path(out).string();
  for (const auto& [key, value] : identity.items()) {
    const nlohmann::json saved = state.identity.value(key, nlohmann::json());
    if (saved != value)
      throw Error("--resume: the checkpoint in " + out.string() + " was made with " + key + " " +
                  saved.dump() + ", this run has " + value.dump() +
                  ": resume with the same settings or choose another --out");
  }
  TrainStart start;
  start.resumed_from = state.step;
  if (start.resumed_from >= options.trainer.steps)
    throw UsageError("--resume: the checkpoint is at step " + std::to_string(start.resumed_from) +
                     " and --steps is " + std::to_string(options.trainer.steps) +
                     ": raise --steps to train further");
  for (int l : layers) {
    const auto file = state.files.find(std::to_string(l));
    if (file == state.files.end())
      throw DataCorruption(where, "names no file for layer " + std::to_string(l));
    start.trainers.push_back(
        sae::Trainer::resume(checkpoint_dir(out) / file->second, options.trainer));
    if (start.trainers.back().steps_done() != start.resumed_from ||
        start.trainers.back().d_in() != d_in)
      throw DataCorruption(where, "layer " + std::to_string(l) + "'s file disagrees with it");
  }
  start.stream.tokens = state.position.tokens;
  if (state.stream == stream_id) start.stream = state.position;  // same corpus, chunk and seed
  return start;
}

// Writes the trained SAE (sae.json and the weights in --save-dtype) and returns its description;
// `last` gets each layer's final statistics.
sae::SaeInfo save_trained(const fs::path& out, const ModelInfo& info, const SaeCorpus& corpus,
                          const SaeTrainOptions& options, const std::vector<int>& layers,
                          int64_t d_in, std::vector<sae::Trainer>& trainers,
                          const std::vector<std::deque<std::pair<int64_t, double>>>& fresh_fvu,
                          int64_t window, int64_t tokens, std::vector<sae::StepStats>& last) {
  sae::SaeInfo si;
  si.layers = layers;
  si.d_in = d_in;
  si.d_latent = options.trainer.latents;
  si.k = options.trainer.k;
  si.head_mode = options.head_mode;
  si.model_fingerprint = info.fingerprint;
  si.dtype = options.dtype;
  si.corpus = corpus.description;
  si.tokens = tokens;
  si.vectors = trainers.front().vectors_seen();
  si.steps = trainers.front().steps_done();
  si.training = options.trainer;
  const at::ScalarType dtype =
      sae::resolve_dtype(options.dtype, c10::Device(c10::kCPU));  // as saved
  std::map<int, sae::SaeWeights> weights;
  for (size_t i = 0; i < layers.size(); ++i) {
    const sae::StepStats final_stats = trainers[i].final_stats();
    si.stats[layers[i]] = {recent_fvu(fresh_fvu[i], si.steps, window, final_stats.fvu),
                           final_stats.dead_fraction};
    weights[layers[i]] = trainers[i].weights().to(c10::Device(c10::kCPU), dtype);
    last[i] = final_stats;
  }
  sae::save_sae(out, si, weights);
  return si;
}

}  // namespace

SaeTrainResult train_sae(const Model& model, const SaeCorpus& corpus,
                         const SaeTrainOptions& options_in, const fs::path& out,
                         const SaeTrainCallback& progress) {
  SaeTrainOptions options = options_in;
  options.trainer.device = model.device().name;
  // One host copy per step would serialise the GPU; the CPU does not care.
  options.trainer.stats_every = model.device().is_cuda() ? 10 : 1;
  options.validate();
  const ModelInfo& info = model.info();
  if (corpus.docs.empty()) throw Error("the corpus is empty: nothing to train on");

  std::vector<int> layers = options.layers.empty() ? info.default_taps : options.layers;
  if (layers.empty()) throw UsageError("the model names no default tap layers: give --layers");
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  check_layers(info, layers, "--layers");
  const bool bos = chunk_bos(info);
  require_chunk_fits_window(info, options.chunk, 0, bos);
  const int64_t d_in = sae::expected_d_in(options.head_mode, info.n_kv_heads, info.head_dim);

  check_train_out(out, options.resume);
  const nlohmann::json identity = run_identity(info, layers, options, d_in);
  const nlohmann::json stream_id = stream_identity(corpus, options);
  TrainStart begun = options.resume
                         ? resume_trainers(out, layers, options, d_in, identity, stream_id)
                         : TrainStart{std::vector<sae::Trainer>(), StreamState(), 0};
  if (!options.resume)
    for (size_t i = 0; i < layers.size(); ++i)
      begun.trainers.emplace_back(options.trainer, d_in);
  std::vector<sae::Trainer>& trainers = begun.trainers;
  StreamState& stream = begun.stream;
  const int64_t resumed_from = begun.resumed_from;

  torch::NoGradGuard no_grad;  // the trainer writes its gradients by hand
  const int64_t capacity = options.resolved_shuffle_buffer();
  std::vector<sae::VectorShuffler> shufflers;
  for (size_t i = 0; i < layers.size(); ++i) {
    // Seeds differ per layer and per resume so that a resumed run does not replay its draws.
    const uint64_t seed = options.trainer.seed * 1000003u + static_cast<uint64_t>(layers[i]) +
                          (static_cast<uint64_t>(resumed_from) << 20);
    shufflers.emplace_back(d_in, capacity, seed, options.trainer.device);
  }

  const std::vector<int64_t> tap_layers(layers.begin(), layers.end());
  const int64_t steps = options.trainer.steps;
  const int64_t window = std::clamp<int64_t>(steps / 10, 1, 100);
  std::vector<std::deque<std::pair<int64_t, double>>> fresh_fvu(layers.size());
  std::vector<sae::StepStats> last(layers.size());
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  int64_t trained = 0;  // vectors trained on in this run, all layers
  int64_t last_checkpoint = resumed_from;

  auto report = [&](int64_t checkpoint_step) {
    if (!progress) return;
    SaeTrainProgress p;
    p.step = trainers.front().steps_done();
    p.steps = steps;
    p.resumed_from = resumed_from;
    p.buffered = shufflers.front().size();
    p.buffer_capacity = capacity;
    p.epoch = stream.epoch;
    p.tokens = stream.tokens;
    if (p.step > resumed_from) {
      for (const sae::StepStats& s : last) {
        p.loss += s.loss / static_cast<double>(last.size());
        p.fvu += s.fvu / static_cast<double>(last.size());
        p.dead_fraction += s.dead_fraction / static_cast<double>(last.size());
      }
    }
    const double t = elapsed();
    p.vectors_per_s = t > 0 ? static_cast<double>(trained) / t : 0;
    p.checkpoint_step = checkpoint_step;
    progress(p);
  };
  auto checkpoint = [&] {
    nlohmann::json state = {{"format", kStateFormat},  {"format_version", kStateVersion},
                            {"identity", identity},    {"stream", stream_id},
                            {"epoch", stream.epoch},   {"offset", stream.offset},
                            {"tokens", stream.tokens}, {"options", options.trainer}};
    write_checkpoint(out, layers, trainers, std::move(state));
    last_checkpoint = trainers.front().steps_done();
    return last_checkpoint;
  };

  report(-1);
  EpochStream epoch(corpus, options.trainer.seed, stream.epoch, options.chunk);
  if (stream.offset == 0) stream.offset = epoch.start();
  while (!trainers.front().done()) {
    if (stream.offset >= epoch.total()) {
      ++stream.epoch;
      epoch = EpochStream(corpus, options.trainer.seed, stream.epoch, options.chunk);
      stream.offset = epoch.start();
      continue;
    }
    const uint64_t len =
        std::min<uint64_t>(static_cast<uint64_t>(options.chunk), epoch.total() - stream.offset);
    const auto taps = tap_chunk(model, epoch.read(stream.offset, len), bos, tap_layers);
    stream.offset += len;
    stream.tokens += len;
    std::vector<torch::Tensor> rows;
    for (const auto& qk : taps)
      rows.push_back(sae::sae_rows_from_keys(qk.second, options.head_mode));

    // The buffers fill in step (every layer gets the same number of rows), and a batch is drawn
    // only from a full buffer, so each batch mixes vectors from many chunks.
    const int64_t n = rows.front().size(0);
    for (int64_t taken = 0; taken < n && !trainers.front().done();) {
      int64_t added = 0;
      for (size_t i = 0; i < layers.size(); ++i)
        added = shufflers[i].add(rows[i].narrow(0, taken, n - taken));
      taken += added;
      while (shufflers.front().full() && !trainers.front().done()) {
        for (size_t i = 0; i < layers.size(); ++i) {
          const at::Tensor batch = shufflers[i].take(options.trainer.batch);
          last[i] = trainers[i].step(batch);
          trained += batch.size(0);
          if (last[i].fresh) {
            fresh_fvu[i].emplace_back(last[i].step, last[i].fvu);
            if (static_cast<int64_t>(fresh_fvu[i].size()) > window) fresh_fvu[i].pop_front();
          }
        }
      }
    }
    const int64_t step = trainers.front().steps_done();
    const bool due = options.checkpoint_every > 0 && !trainers.front().done() &&
                     step - last_checkpoint >= options.checkpoint_every;
    report(due ? checkpoint() : -1);
  }
  if (options.checkpoint_every > 0 && trainers.front().steps_done() != last_checkpoint)
    checkpoint();

  // Outputs.
  SaeTrainResult result;
  result.resumed_from = resumed_from;
  result.info = save_trained(out, info, corpus, options, layers, d_in, trainers, fresh_fvu, window,
                             static_cast<int64_t>(stream.tokens), last);
  report(-1);
  result.seconds = elapsed();
  result.vectors_per_s = result.seconds > 0 ? static_cast<double>(trained) / result.seconds : 0;
  if (options.checkpoint_every > 0) result.checkpoint_dir = checkpoint_dir(out);
  return result;
}

// ---------------------------------------------------------------------------------------------
// Evaluation

void SaeEvalOptions::validate() const {
  if (max_tokens < 1) throw UsageError("--max-tokens must be at least 1");
  check_chunk_range(chunk);
  sae::EncoderOptions e;
  e.dtype = sae_dtype;
  e.validate();
}

SaeEvalResult evaluate_sae(const Model& model, const fs::path& sae_dir, const SaeCorpus& corpus,
                           const SaeEvalOptions& options, const SaeEvalCallback& progress) {
  options.validate();
  const ModelInfo& info = model.info();
  const auto start = std::chrono::steady_clock::now();
  if (!fs::is_directory(sae_dir))
    throw Error(sae_dir.string() +
                ": SAE directory does not exist (train one with `s3attn sae train`)");
  const sae::SaeInfo sae_info = sae::read_sae_info(sae::sae_info_path(sae_dir));
  check_layers(info, sae_info.layers, sae_dir.string() + ": the SAE's layers");
  sae::SaeExpect expect;
  expect.d_in = sae::expected_d_in(sae_info.head_mode, info.n_kv_heads, info.head_dim);
  expect.d_in_source = "the key width of model " + info.dir.string();
  expect.model_fingerprint = info.fingerprint;
  const sae::Sae sae = sae::load_sae(sae_dir, expect);
  const bool bos = chunk_bos(info);
  require_chunk_fits_window(info, options.chunk, 0, bos);

  sae::EncoderOptions encoder_options;
  encoder_options.device = model.device().name;
  encoder_options.dtype = options.sae_dtype;
  encoder_options.validate();
  // Evaluators keep references to the encoders: build all encoders first, then never move them.
  std::vector<sae::Encoder> encoders;
  encoders.reserve(sae.info.layers.size());
  for (int l : sae.info.layers)
    encoders.emplace_back(sae.layers.at(l), sae.info.k, encoder_options);
  std::vector<sae::Evaluator> keys, queries;
  keys.reserve(encoders.size());
  queries.reserve(encoders.size());
  for (const sae::Encoder& e : encoders) {
    keys.emplace_back(e);
    queries.emplace_back(e);
  }

  torch::NoGradGuard no_grad;
  const std::vector<int64_t> tap_layers(sae.info.layers.begin(), sae.info.layers.end());
  const uint64_t total = std::min<uint64_t>(options.max_tokens, corpus.tokens);
  SaeEvalResult result;
  // Chunks are cut from each document's start, as the scan cuts them.
  for (const std::vector<int32_t>& doc : corpus.docs) {
    for (size_t begin = 0; begin < doc.size() && result.tokens < total;) {
      const size_t len = std::min<size_t>({static_cast<size_t>(options.chunk), doc.size() - begin,
                                           static_cast<size_t>(total - result.tokens)});
      const std::vector<int32_t> ids(doc.begin() + static_cast<ptrdiff_t>(begin),
                                     doc.begin() + static_cast<ptrdiff_t>(begin + len));
      const auto taps = tap_chunk(model, ids, bos, tap_layers);
      for (size_t i = 0; i < encoders.size(); ++i) {
        keys[i].add(sae::sae_rows_from_keys(taps[i].second, sae.info.head_mode));
        queries[i].add(
            sae::sae_rows_from_queries(taps[i].first, info.n_kv_heads, sae.info.head_mode));
      }
      begin += len;
      result.tokens += len;
      ++result.chunks;
      if (progress) progress(result.tokens, total);
    }
    if (result.tokens >= total) break;
  }

  result.info = sae.info;
  for (size_t i = 0; i < encoders.size(); ++i) {
    const sae::EvalStats k = keys[i].result();
    const sae::EvalStats q = queries[i].result();
    result.layers.push_back({sae.info.layers[i], k.fvu, q.fvu, k.dead_fraction, k.mean_l0,
                             q.dead_fraction, q.mean_l0, k.vectors, q.vectors});
    result.unresolved_rows += encoders[i].unresolved_rows();
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace s3
