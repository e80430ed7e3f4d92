#include "index/index_writer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <system_error>

#include <unistd.h>

#include "core/base/error.h"
#include "core/base/fs_util.h"
#include "index/file_format.h"
#include "index/half.h"
#include "index/json_diff.h"
#include "index/manifest.h"
#include "index/parallel.h"
#include "index/passage_splitter.h"
#include "index/posting_accumulator.h"
#include "index/segment_writer.h"
#include "index/utf8.h"

namespace s3::index {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kCreatedBy = "s3attn-index 1";

std::string layers_text(const std::vector<int>& layers) {
  std::string s = "[";
  for (size_t i = 0; i < layers.size(); ++i)
    s += (i ? "," : "") + std::to_string(layers[i]);
  return s + "]";
}

std::string segment_name(uint32_t n) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "seg-%06u", n);
  return buf;
}

// "seg-NNNNNN" -> NNNNNN, else -1.
int64_t segment_number(const std::string& name) {
  if (name.size() != 10 || name.compare(0, 4, "seg-") != 0) return -1;
  int64_t v = 0;
  for (size_t i = 4; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

fs::path normalize_out(const fs::path& out) {
  fs::path p = fs::absolute(out).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();
  return p;
}

bool is_empty_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec) && fs::is_empty(p, ec);
}

}  // namespace

void IndexWriterOptions::validate() const {
  if (out.empty()) throw UsageError("index writer: no output directory given (--out)");
  if (content == IndexContent::kLexicalOnly) {
    if (!layers.empty() || d_latent != 0)
      throw UsageError("index writer: a lexical-only index has no SAE layers and no d_latent");
  } else if (layers.empty()) {
    throw UsageError("index writer: no layers to index");
  }
  std::set<int> seen;
  for (int l : layers) {
    if (l < 0 || l > 999)
      throw UsageError("index writer: layer " + std::to_string(l) + " out of [0, 999]");
    if (!seen.insert(l).second) {
      throw UsageError("index writer: layer " + std::to_string(l) + " listed twice in " +
                       layers_text(layers));
    }
  }
  if (content == IndexContent::kSaeFeatures && (d_latent == 0 || d_latent > (1u << 24))) {
    throw UsageError("index writer: d_latent must be in [1, 2^24], got " +
                     std::to_string(d_latent));
  }
  if (d_latent > static_cast<uint32_t>(std::numeric_limits<int32_t>::max())) {
    throw UsageError("index writer: d_latent too large");
  }
  codec_by_name(codec);
  if (!metadata.is_object()) throw UsageError("index writer: metadata must be a JSON object");
  lexical.validate();
  if (dense_dim > 65536) throw UsageError("index writer: dense vectors of more than 65536 values");
}

struct IndexWriter::Impl {
  IndexWriterOptions opt;
  fs::path out;  // normalized
  const PostingCodec* codec = nullptr;
  Manifest base;                        // the existing index when appending, else empty
  bool appending = false;               // append to an existing index
  std::unique_ptr<DirectoryLock> lock;  // held on an existing index we append to or replace
  SegmentContent content;
  // add_document (exclusive) against the range checks of add_feature_* (shared), which may run on
  // one thread per layer slot while the scan adds the next document.
  mutable std::shared_mutex content_mutex;
  std::vector<PostingAccumulator> layers;
  std::vector<std::vector<uint16_t>> dense;  // per segment-local document: float16 rows, or empty
  std::vector<uint8_t> has_dense;            // per segment-local document
  bool done = false;                         // committed, or failed in commit
  std::vector<fs::path> cleanup;             // temporary paths to remove if we do not finish

  uint32_t token_base() const { return base.n_tokens(); }
  uint32_t doc_base() const { return base.n_docs(); }
  void stage(std::string_view s) const {
    if (opt.commit_hook) opt.commit_hook(s);
  }
  void check_open() const {
    if (done)
      throw Error("index writer for " + out.string() +
                  " was already committed (or its commit failed)");
  }
  void check_range(uint32_t slot, uint32_t global_begin, uint32_t n_tokens) const;

  // commit()'s stages, in order.
  struct Staging {
    fs::path root;     // what gets published: the whole index, or one segment when appending
    fs::path seg_dir;  // where the segment's files are written
    std::string seg_name;
  };
  void check_committable() const;
  Staging make_staging();
  DenseRows take_dense_rows();
  SegmentEntry add_segment(Manifest& manifest, const std::string& seg_name,
                           const SegmentWriteResult& written) const;
  void publish_segment(const Staging& staging, const Manifest& manifest);
  void publish_index(const Staging& staging, const Manifest& manifest);
  // Appending: `metadata` must equal the index's, apart from the ignored keys.
  void check_append_metadata(const json& metadata) const {
    if (!appending) return;
    const json old_meta = without_keys(base.metadata, opt.append_ignore_metadata_keys);
    const json new_meta = without_keys(metadata, opt.append_ignore_metadata_keys);
    if (old_meta != new_meta) {
      throw Error("cannot append to " + out.string() +
                  ": it was built with a different model, SAE, tokenizer or scan configuration: " +
                  json_diff(old_meta, new_meta, "index", "now") +
                  "; use the same settings or rebuild with --overwrite");
    }
  }
};

IndexWriter::IndexWriter(IndexWriterOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  options.validate();
  m.opt = std::move(options);
  m.out = normalize_out(m.opt.out);
  m.codec = &codec_by_name(m.opt.codec);
  std::error_code ec;
  const bool exists = fs::exists(fs::symlink_status(m.out, ec));
  const std::string out_s = m.out.string();
  switch (m.opt.mode) {
    case WriteMode::kCreate:
      if (exists) {
        throw Error(out_s +
                    " already exists; pass --overwrite to replace it or --append to add "
                    "documents to it");
      }
      break;
    case WriteMode::kOverwrite:
      if (exists) {
        if (!fs::is_directory(m.out, ec)) {
          throw Error("refusing to overwrite " + out_s + ": it is not a directory");
        }
        if (!is_empty_dir(m.out) && !fs::exists(m.out / kManifestFile, ec)) {
          throw Error(
              "refusing to overwrite " + out_s +
              ": it is not an s3attn index (no manifest.json); remove it yourself or choose "
              "another --out");
        }
        // Keep appenders of the index we replace out (they hold this lock while they write).
        if (fs::exists(m.out / kManifestFile, ec)) m.lock = std::make_unique<DirectoryLock>(m.out);
      }
      break;
    case WriteMode::kAppend:
      if (exists && !is_empty_dir(m.out)) {
        if (!fs::is_directory(m.out, ec))
          throw Error("cannot append to " + out_s + ": not a directory");
        m.lock = std::make_unique<DirectoryLock>(m.out);
        m.base = Manifest::load(m.out);
        m.appending = true;
        const Manifest& b = m.base;
        const std::string pre = "cannot append to " + out_s + ": ";
        const std::string fix = "; use the same settings or rebuild with --overwrite";
        if (b.content != m.opt.content) {
          throw Error(pre +
                      (b.content == IndexContent::kLexicalOnly
                           ? "it is lexical-only (built without an SAE) but this run indexes SAE "
                             "features"
                           : "it holds SAE features but this run has no SAE (lexical-only)") +
                      fix);
        }
        if (b.layers != m.opt.layers) {
          throw Error(pre + "it indexes layers " + layers_text(b.layers) + " but this run taps " +
                      layers_text(m.opt.layers) + fix);
        }
        if (b.d_latent != m.opt.d_latent) {
          throw Error(pre + "its SAE has " + std::to_string(b.d_latent) + " latents, this one " +
                      std::to_string(m.opt.d_latent) + fix);
        }
        if (b.codec != m.codec->name()) {
          throw Error(pre + "its postings use codec '" + b.codec + "', this run '" +
                      std::string(m.codec->name()) + "'" + fix);
        }
        if (b.dense.has_value() != (m.opt.dense_dim > 0) ||
            (b.dense && b.dense->dim != m.opt.dense_dim)) {
          throw Error(
              pre +
              (b.dense ? "it holds dense passage embeddings of " + std::to_string(b.dense->dim) +
                             " values; this run " +
                             (m.opt.dense_dim ? "makes " + std::to_string(m.opt.dense_dim)
                                              : std::string("has no --dense-model"))
                       : std::string(
                             "it has no dense passage embeddings; this run has a --dense-model")) +
              fix);
        }
        if (b.lexical.target_words != m.opt.lexical.target_words ||
            b.lexical.language != m.opt.lexical.language ||
            b.analyzer_version != kAnalyzerVersion) {
          throw Error(pre + "its lexical index uses " + std::to_string(b.lexical.target_words) +
                      "-word passages, stemmer '" + b.lexical.language + "', analyzer v" +
                      std::to_string(b.analyzer_version) + "; this run " +
                      std::to_string(m.opt.lexical.target_words) + ", '" + m.opt.lexical.language +
                      "', v" + std::to_string(kAnalyzerVersion) + fix);
        }
        m.check_append_metadata(m.opt.metadata);
      }
      break;
  }
  m.layers.reserve(m.opt.layers.size());
  for (size_t l = 0; l < m.opt.layers.size(); ++l)
    m.layers.emplace_back(m.opt.d_latent);
}

IndexWriter::~IndexWriter() {
  for (const fs::path& p : impl_->cleanup)
    remove_tree_quietly(p);
}

DocumentRange IndexWriter::add_document(std::string_view name, std::string_view text,
                                        std::span<const int32_t> ids,
                                        std::span<const TokenOffset> offsets) {
  Impl& m = *impl_;
  m.check_open();
  std::unique_lock content_lock(m.content_mutex);
  const std::string who = "document '" + std::string(name) + "'";
  if (ids.size() != offsets.size()) {
    throw Error(who + ": " + std::to_string(ids.size()) + " token ids but " +
                std::to_string(offsets.size()) + " offsets");
  }
  if (text.size() > std::numeric_limits<uint32_t>::max())
    throw Error(who + " is larger than 4 GiB");
  if (size_t bad = find_invalid_utf8(text); bad != std::string_view::npos) {
    throw Error(who + " is not valid UTF-8 (byte " + std::to_string(bad) +
                "); convert it to UTF-8");
  }
  if (find_invalid_utf8(name) != std::string_view::npos)
    throw Error(who + ": name is not valid UTF-8");
  uint32_t prev_begin = 0;
  for (size_t i = 0; i < offsets.size(); ++i) {
    const TokenOffset& o = offsets[i];
    if (o.begin > o.end || o.end > text.size() || o.begin < prev_begin) {
      throw Error(who + ": token " + std::to_string(i) + " has byte range [" +
                  std::to_string(o.begin) + ", " + std::to_string(o.end) + ") which is " +
                  (o.begin < prev_begin
                       ? "before the previous token's start"
                       : "outside the text (" + std::to_string(text.size()) + " bytes)"));
    }
    prev_begin = o.begin;
  }
  const uint64_t local_begin = m.content.n_tokens();
  if (uint64_t{m.token_base()} + local_begin + ids.size() > kMaxTokens) {
    throw Error("index would exceed " + std::to_string(kMaxTokens) +
                " tokens; split it into several indexes");
  }
  if (uint64_t{m.doc_base()} + m.content.n_docs() + 1 > std::numeric_limits<uint32_t>::max()) {
    throw Error("too many documents in one index");
  }
  SegmentContent& c = m.content;
  c.names.emplace_back(name);
  c.texts.append(text);
  c.text_offsets.push_back(c.texts.size());
  c.ids.insert(c.ids.end(), ids.begin(), ids.end());
  c.offsets.insert(c.offsets.end(), offsets.begin(), offsets.end());
  c.token_offsets.push_back(c.n_tokens());
  m.dense.emplace_back();
  m.has_dense.push_back(0);
  DocumentRange r;
  r.doc = m.doc_base() + c.n_docs() - 1;
  r.token_begin = m.token_base() + static_cast<uint32_t>(local_begin);
  r.token_end = m.token_base() + c.n_tokens();
  return r;
}

void IndexWriter::Impl::check_range(uint32_t slot, uint32_t global_begin, uint32_t n_tokens) const {
  check_open();
  if (slot >= layers.size()) {
    throw Error("layer slot " + std::to_string(slot) + " out of range: the index has " +
                std::to_string(layers.size()) + " layers " + layers_text(opt.layers));
  }
  const uint64_t end = uint64_t{global_begin} + n_tokens;
  const uint32_t lo = token_base(), hi = token_base() + content.n_tokens();
  if (global_begin < lo || end > hi) {
    throw Error("feature range [" + std::to_string(global_begin) + ", " + std::to_string(end) +
                ") is outside the tokens added to this writer [" + std::to_string(lo) + ", " +
                std::to_string(hi) + "); add the document first");
  }
  const uint32_t frontier = lo + layers[slot].frontier();
  if (global_begin < frontier) {
    throw Error("feature ranges of layer " + std::to_string(opt.layers[slot]) +
                " must come in increasing position order: got one starting at " +
                std::to_string(global_begin) + " after one ending at " + std::to_string(frontier));
  }
}

void IndexWriter::add_feature_bitmap(uint32_t layer_slot, uint32_t global_begin, uint32_t n_tokens,
                                     const uint64_t* bits) {
  Impl& m = *impl_;
  {
    std::shared_lock content_lock(m.content_mutex);
    m.check_range(layer_slot, global_begin, n_tokens);
  }
  if (n_tokens == 0) return;
  if (bits == nullptr) throw Error("add_feature_bitmap: null bitmap");
  m.layers[layer_slot].add_bitmap(global_begin - m.token_base(), n_tokens, bits);
}

void IndexWriter::add_feature_ids(uint32_t layer_slot, uint32_t global_begin, uint32_t n_tokens,
                                  uint32_t n_slots, const int32_t* ids) {
  Impl& m = *impl_;
  {
    std::shared_lock content_lock(m.content_mutex);
    m.check_range(layer_slot, global_begin, n_tokens);
  }
  if (n_tokens == 0 || n_slots == 0) return;
  if (ids == nullptr) throw Error("add_feature_ids: null ids");
  // Validate the whole block first so a bad id leaves the writer unchanged.
  const size_t n = size_t{n_tokens} * n_slots;
  const auto d = static_cast<int32_t>(m.opt.d_latent);
  int32_t max_id = -1;
  for (size_t i = 0; i < n; ++i)
    max_id = std::max(max_id, ids[i]);
  if (max_id >= d) {
    throw Error("feature id " + std::to_string(max_id) + " is out of range: the SAE has " +
                std::to_string(d) + " latents");
  }
  m.layers[layer_slot].add_ids(global_begin - m.token_base(), n_tokens, n_slots, ids);
}

void IndexWriter::add_dense_vectors(uint32_t global_doc, std::span<const float> vectors) {
  Impl& m = *impl_;
  m.check_open();
  const uint32_t dim = m.opt.dense_dim;
  if (dim == 0)
    throw Error("add_dense_vectors: this index writer makes no dense embeddings (dense_dim 0)");
  std::string_view text;
  uint32_t local = 0;
  {
    std::shared_lock content_lock(m.content_mutex);
    if (global_doc < m.doc_base() || global_doc - m.doc_base() >= m.content.n_docs())
      throw Error("add_dense_vectors: document " + std::to_string(global_doc) +
                  " was not added to this writer");
    local = global_doc - m.doc_base();
    if (m.has_dense[local])
      throw Error("add_dense_vectors: document " + std::to_string(global_doc) +
                  " has its vectors already");
    const SegmentContent& c = m.content;
    text = std::string_view(c.texts).substr(c.text_offsets[local],
                                            c.text_offsets[local + 1] - c.text_offsets[local]);
    const size_t passages = document_passages(text, m.opt.lexical.target_words).size();
    if (vectors.size() != passages * dim) {
      throw Error("add_dense_vectors: document " + std::to_string(global_doc) + " has " +
                  std::to_string(passages) + " passages of " + std::to_string(dim) +
                  " values, got " + std::to_string(vectors.size()) + " values");
    }
  }
  std::vector<uint16_t> rows(vectors.size());
  for (size_t i = 0; i < vectors.size(); ++i) {
    if (!std::isfinite(vectors[i]))
      throw Error("add_dense_vectors: document " + std::to_string(global_doc) +
                  " has a non-finite value");
    rows[i] = float_to_half(vectors[i]);
  }
  std::unique_lock content_lock(m.content_mutex);
  m.dense[local] = std::move(rows);
  m.has_dense[local] = 1;
}

const IndexWriterOptions& IndexWriter::options() const {
  return impl_->opt;
}
uint32_t IndexWriter::doc_base() const {
  return impl_->doc_base();
}
void IndexWriter::add_feature_lists(uint32_t layer_slot, uint32_t global_begin, uint32_t n_tokens,
                                    const FeatureListFetch& fetch) {
  Impl& m = *impl_;
  {
    std::shared_lock content_lock(m.content_mutex);
    m.check_range(layer_slot, global_begin, n_tokens);
  }
  if (n_tokens == 0) return;
  const uint32_t base = m.token_base();
  const std::string layer = std::to_string(m.opt.layers[layer_slot]);
  try {
    m.layers[layer_slot].add_lists(
        global_begin - base, n_tokens,
        [&](uint32_t f, std::vector<uint32_t>& out) {
          fetch(f, out);
          for (uint32_t& p : out) {
            // Below the base wraps far past the range's end: refused as out of range.
            p -= base;
          }
        },
        resolve_threads(m.opt.commit_threads));
  } catch (const Error& e) {
    throw Error("layer " + layer + ", " + e.what() + " (positions in the new segment)");
  }
}

void IndexWriter::set_metadata(json metadata) {
  Impl& m = *impl_;
  m.check_open();
  if (!metadata.is_object()) throw UsageError("index writer: metadata must be a JSON object");
  m.check_append_metadata(metadata);
  m.opt.metadata = std::move(metadata);
}

uint32_t IndexWriter::n_documents() const {
  std::shared_lock content_lock(impl_->content_mutex);
  return impl_->content.n_docs();
}
uint32_t IndexWriter::token_end() const {
  std::shared_lock content_lock(impl_->content_mutex);
  return impl_->token_base() + impl_->content.n_tokens();
}
uint64_t IndexWriter::n_postings(uint32_t layer_slot) const {
  return impl_->layers.at(layer_slot).n_postings();
}

void IndexWriter::Impl::check_committable() const {
  check_open();
  if (content.n_docs() == 0) {
    throw Error("nothing to index for " + out.string() + ": no documents were added (empty input)");
  }
  if (opt.dense_dim > 0) {
    for (uint32_t d = 0; d < content.n_docs(); ++d) {
      if (!has_dense[d]) {
        throw Error("internal: document '" + content.names[d] +
                    "' has no dense passage vectors (add_dense_vectors)");
      }
    }
  }
}

// A temporary directory for the new segment: inside the index when appending (published by a
// rename into it), beside it otherwise (the whole index, published by one rename or exchange).
// Leftovers of killed runs go first.
IndexWriter::Impl::Staging IndexWriter::Impl::make_staging() {
  Staging st;
  if (appending) {
    // We hold the directory lock: leftovers of killed appends (staging directories, segments the
    // manifest never listed) can go.
    std::set<std::string> listed;
    uint32_t next = 0;
    for (const SegmentEntry& seg : base.segments) {
      listed.insert(seg.dir);
      next = std::max<uint32_t>(next, static_cast<uint32_t>(segment_number(seg.dir) + 1));
    }
    remove_stale_temp_dirs(out, ".tmp-");
    remove_stale_temp_dirs(out, std::string(kManifestFile) + ".tmp-");
    for (const auto& e : fs::directory_iterator(out)) {
      const std::string name = e.path().filename().string();
      if (segment_number(name) >= 0 && listed.count(name) == 0) remove_tree_quietly(e.path());
    }
    st.seg_name = segment_name(next);
    st.root = make_temp_dir(out, ".tmp-" + std::to_string(::getpid()) + "-");
    cleanup.push_back(st.root);
    st.seg_dir = st.root;
    return st;
  }
  const fs::path parent = out.parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw Error("cannot create " + parent.string() + ": " + ec.message());
  remove_stale_temp_dirs(parent, "." + out.filename().string() + ".tmp-");
  remove_stale_temp_dirs(parent, "." + out.filename().string() + ".old-");
  st.root = make_temp_dir(
      parent, "." + out.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-");
  cleanup.push_back(st.root);
  st.seg_name = segment_name(0);
  st.seg_dir = st.root / st.seg_name;
  fs::create_directory(st.seg_dir, ec);
  if (ec) throw Error("cannot create " + st.seg_dir.string() + ": " + ec.message());
  return st;
}

// The documents' dense rows in one array (their memory released as they move).
DenseRows IndexWriter::Impl::take_dense_rows() {
  DenseRows rows;
  if (opt.dense_dim == 0) return rows;
  rows.dim = opt.dense_dim;
  for (std::vector<uint16_t>& doc_rows : dense) {
    rows.values.insert(rows.values.end(), doc_rows.begin(), doc_rows.end());
    std::vector<uint16_t>().swap(doc_rows);
  }
  return rows;
}

// Lists the written segment in `manifest` (a new index's starts empty, an append's is the
// existing one) and returns its entry.
SegmentEntry IndexWriter::Impl::add_segment(Manifest& manifest, const std::string& seg_name,
                                            const SegmentWriteResult& written) const {
  if (!appending) {
    manifest.created_by = kCreatedBy;
    manifest.content = opt.content;
    manifest.layers = opt.layers;
    manifest.d_latent = opt.d_latent;
    manifest.codec = std::string(codec->name());
    manifest.codec_id = codec->id();
    manifest.lexical = opt.lexical;
    manifest.analyzer_version = kAnalyzerVersion;
    manifest.metadata = opt.metadata;
    if (opt.dense_dim > 0) manifest.dense = DenseInfo{opt.dense_dim, "float16"};
  }
  SegmentEntry seg;
  seg.dir = seg_name;
  seg.doc_base = manifest.n_docs();
  seg.n_docs = content.n_docs();
  seg.token_base = manifest.n_tokens();
  seg.n_tokens = content.n_tokens();
  seg.passage_base = manifest.n_passages();
  seg.n_passages = written.n_passages;
  seg.postings = written.postings;
  seg.postings_bytes = written.postings_bytes;
  seg.files = written.files;
  manifest.segments.push_back(seg);
  return seg;
}

// Append: the segment renamed into the index, then the manifest that lists it saved (the commit
// point); a crash between the two leaves an orphan segment the next append removes.
void IndexWriter::Impl::publish_segment(const Staging& staging, const Manifest& manifest) {
  const fs::path final_seg = out / staging.seg_name;
  stage("staged");
  rename_noreplace(staging.root, final_seg);
  cleanup = {final_seg};  // an orphan until the manifest lists it
  if (opt.fsync) fsync_path(out);
  stage("segment-published");
  manifest.save(out, opt.fsync);  // the commit point
  cleanup.clear();
  stage("published");
}

// A new or replaced index: the staged directory, manifest included, takes the index's place in
// one rename (or exchange, for an overwrite), then the old index is deleted.
void IndexWriter::Impl::publish_index(const Staging& staging, const Manifest& manifest) {
  const fs::path parent = out.parent_path();
  manifest.save(staging.root, opt.fsync);
  if (opt.fsync) fsync_path(staging.root);
  stage("staged");
  std::error_code ec;
  const bool exists = fs::exists(fs::symlink_status(out, ec));
  if (opt.mode == WriteMode::kCreate || !exists) {
    try {
      rename_noreplace(staging.root, out);
    } catch (const Error&) {
      throw Error(out.string() + " appeared while indexing; pass --overwrite to replace it");
    }
    cleanup.clear();
  } else if (opt.mode == WriteMode::kAppend) {  // appending to an empty directory
    if (!is_empty_dir(out) || !rename_exchange(staging.root, out)) {
      throw Error(out.string() + " changed while indexing; retry");
    }
    stage("exchanged");
  } else {
    // Overwrite: swap atomically, then delete the old index (now at the staging path).
    if (!rename_exchange(staging.root, out)) {
      // No RENAME_EXCHANGE on this filesystem: move the old one aside first. A crash between the
      // two renames leaves the old index complete at <out>.old-*.
      const fs::path aside = make_temp_dir(
          parent, "." + out.filename().string() + ".old-" + std::to_string(::getpid()) + "-");
      fs::remove(aside, ec);
      rename_replace(out, aside);
      try {
        rename_replace(staging.root, out);
      } catch (...) {
        rename_replace(aside, out);  // put the old index back
        throw;
      }
      cleanup = {aside};
    }
    stage("exchanged");
  }
  if (opt.fsync) fsync_path(parent);
  stage("published");
  for (const fs::path& p : cleanup)
    remove_tree_quietly(p);  // the old index, if any
  cleanup.clear();
}

CommitStats IndexWriter::commit() {
  Impl& m = *impl_;
  m.check_committable();
  m.done = true;  // from here on the writer is spent, whatever happens
  const auto t0 = std::chrono::steady_clock::now();
  m.stage("begin");

  // 1. Stage the new segment in a temporary directory.
  const Impl::Staging staging = m.make_staging();
  const SegmentWriteResult written =
      write_segment(staging.seg_dir, m.content, m.layers, m.opt.layers, *m.codec, m.opt.lexical,
                    m.take_dense_rows(), resolve_threads(m.opt.commit_threads), m.opt.fsync);
  if (m.opt.fsync) fsync_path(staging.seg_dir);
  Manifest manifest = m.appending ? m.base : Manifest();
  const SegmentEntry seg = m.add_segment(manifest, staging.seg_name, written);

  // 2. Publish.
  if (m.appending)
    m.publish_segment(staging, manifest);
  else
    m.publish_index(staging, manifest);

  CommitStats st;
  st.index_dir = m.out;
  st.segment = staging.seg_name;
  st.docs = seg.n_docs;
  st.tokens = seg.n_tokens;
  st.passages = seg.n_passages;
  st.postings = seg.postings;
  st.postings_bytes = seg.postings_bytes;
  for (const auto& [name, d] : seg.files)
    st.file_bytes += d.bytes;
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Release the memory now rather than at destruction.
  m.layers.clear();
  m.content = SegmentContent{};
  return st;
}

}  // namespace s3::index
