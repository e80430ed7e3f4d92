#include "index/index_reader.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <stdexcept>

#include "core/base/error.h"
#include "index/codec_registry.h"
#include "index/file_format.h"
#include "index/manifest.h"
#include "index/segment_format.h"
#include "index/text_analyzer.h"

namespace s3::index {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct LayerView {
  PostingsHeader header{};
  std::span<const uint32_t> df;
  std::span<const uint64_t> offsets;
  const uint8_t* data = nullptr;  // start of the data area
  const uint8_t* file_end =
      nullptr;  // end of the mapping (decoders may look past a list, not past this)
  std::string path;
};

struct SegmentView {
  SegmentEntry entry;
  std::vector<CheckedFile> files;  // keeps the mappings alive
  std::span<const DocRecord> docs;
  std::span<const uint8_t> names;
  std::span<const uint8_t> text;
  std::span<const int32_t> ids;
  std::span<const TokenOffset> offsets;
  std::vector<LayerView> layers;
};

std::string_view as_sv(std::span<const uint8_t> s, uint64_t off, uint64_t len) {
  return {reinterpret_cast<const char*>(s.data()) + off, static_cast<size_t>(len)};
}

}  // namespace

struct IndexReader::Impl {
  fs::path dir;
  json manifest_json;
  Manifest manifest;
  const PostingCodec* codec = nullptr;
  std::vector<SegmentView> segments;
  std::vector<SegmentSummary> summaries;
  std::vector<std::vector<uint32_t>> df;  // [slot][feature], summed over segments
  std::vector<LayerTotals> totals;
  LexicalIndex lexical;
  std::optional<DenseIndex> dense;
  uint64_t file_bytes = 0;

  const SegmentView& segment_of_doc(uint32_t doc) const {
    if (doc >= manifest.n_docs()) {
      throw std::out_of_range("document " + std::to_string(doc) + " out of range (" +
                              std::to_string(manifest.n_docs()) + " documents)");
    }
    auto it =
        std::upper_bound(segments.begin(), segments.end(), doc,
                         [](uint32_t d, const SegmentView& s) { return d < s.entry.doc_base; });
    return *(it - 1);
  }
};

namespace {

CheckedFile open_segment_file(const fs::path& seg_dir, const SegmentEntry& e,
                              const std::string& name, FileKind kind,
                              const std::string& manifest_path, bool verify) {
  auto it = e.files.find(name);
  if (it == e.files.end()) {
    throw DataCorruption(manifest_path, "segment " + e.dir + " does not list " + name +
                                            "; rebuild the index with --overwrite");
  }
  return open_checked(seg_dir / name, kind, it->second, verify);
}

// A lexical-only manifest over a segment that holds feature postings: the manifest lost its layers
// (hand edit, foreign tool), so neither it nor the files can be trusted.
void refuse_feature_files(const fs::path& seg_dir, const std::string& manifest_path) {
  std::error_code ec;
  for (fs::directory_iterator it(seg_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.starts_with("postings-"))
      throw DataCorruption(manifest_path,
                           "the index is lexical-only (built without an SAE) but " +
                               it->path().string() +
                               " holds feature postings; rebuild the index with --overwrite");
  }
}

void parse_docs(SegmentView& s, const CheckedFile& f) {
  BodyReader r(f.body, f.file.path());
  const auto h = r.read_pod<DocsHeader>();
  if (h.n_docs != s.entry.n_docs)
    r.fail("holds " + std::to_string(h.n_docs) + " documents, the manifest says " +
           std::to_string(s.entry.n_docs));
  s.docs = r.read_array<DocRecord>(h.n_docs);
  s.names = r.read_bytes(h.names_bytes);
  if (r.remaining() != 0) r.fail("trailing bytes after the names");
  uint32_t next = 0;
  for (const DocRecord& d : s.docs) {
    if (d.token_begin != next || d.token_end < d.token_begin)
      r.fail("document token ranges do not tile the segment");
    next = d.token_end;
    if (d.name_offset > s.names.size() || d.name_bytes > s.names.size() - d.name_offset)
      r.fail("document name out of range");
  }
  if (next != s.entry.n_tokens)
    r.fail("documents cover " + std::to_string(next) + " tokens, the manifest says " +
           std::to_string(s.entry.n_tokens));
}

void parse_tokens(SegmentView& s, const CheckedFile& f) {
  BodyReader r(f.body, f.file.path());
  const auto h = r.read_pod<TokensHeader>();
  if (h.n_tokens != s.entry.n_tokens)
    r.fail("holds " + std::to_string(h.n_tokens) + " tokens, the manifest says " +
           std::to_string(s.entry.n_tokens));
  s.ids = r.read_array<int32_t>(h.n_tokens);
  r.skip_to_alignment(8);
  s.offsets = r.read_array<TokenOffset>(h.n_tokens);
  if (r.remaining() != 0) r.fail("trailing bytes after the token offsets");
  for (const DocRecord& d : s.docs) {
    if (d.text_offset > s.text.size() || d.text_bytes > s.text.size() - d.text_offset) {
      BodyReader(s.text, s.files.at(1).file.path()).fail("document text out of range");
    }
    for (uint32_t t = d.token_begin; t < d.token_end; ++t) {
      if (s.offsets[t].begin > s.offsets[t].end || s.offsets[t].end > d.text_bytes)
        r.fail("token byte range outside its document");
    }
  }
}

LayerView parse_postings(const SegmentView& s, const CheckedFile& f, const Manifest& m,
                         uint32_t slot) {
  BodyReader r(f.body, f.file.path());
  LayerView v;
  v.path = f.file.path();
  v.header = r.read_pod<PostingsHeader>();
  const PostingsHeader& h = v.header;
  if (h.codec_id != m.codec_id)
    r.fail("codec id " + std::to_string(h.codec_id) + " differs from the manifest's " +
           std::to_string(m.codec_id));
  if (h.layer != m.layers[slot] || h.layer_slot != slot) r.fail("belongs to another layer");
  if (h.d_latent != m.d_latent)
    r.fail("has " + std::to_string(h.d_latent) + " features, the manifest says " +
           std::to_string(m.d_latent));
  if (h.n_tokens != s.entry.n_tokens) r.fail("token count differs from the manifest's");
  if (h.n_postings != s.entry.postings[slot] || h.data_bytes != s.entry.postings_bytes[slot])
    r.fail("posting totals differ from the manifest's");
  v.df = r.read_array<uint32_t>(h.d_latent);
  r.skip_to_alignment(8);
  v.offsets = r.read_array<uint64_t>(uint64_t{h.d_latent} + 1);
  auto data = r.read_bytes(h.data_bytes);
  if (r.remaining() != 0) r.fail("trailing bytes after the posting data");
  v.data = data.data();
  v.file_end = f.file.data() + f.file.size();
  uint64_t sum = 0;
  if (v.offsets[0] != 0 || v.offsets[h.d_latent] != h.data_bytes)
    r.fail("posting offsets inconsistent");
  for (uint32_t i = 0; i < h.d_latent; ++i) {
    if (v.df[i] > h.n_tokens)
      r.fail("df of feature " + std::to_string(i) + " exceeds the token count");
    if (v.offsets[i + 1] < v.offsets[i]) r.fail("posting offsets not increasing");
    if ((v.df[i] == 0) != (v.offsets[i + 1] == v.offsets[i]))
      r.fail("posting list size inconsistent with its df");
    sum += v.df[i];
  }
  if (sum != h.n_postings) r.fail("df values do not add up to the posting count");
  return v;
}

}  // namespace

IndexReader::IndexReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
IndexReader::~IndexReader() = default;
IndexReader::IndexReader(IndexReader&&) noexcept = default;
IndexReader& IndexReader::operator=(IndexReader&&) noexcept = default;

IndexReader IndexReader::open(const fs::path& dir, ReaderOptions options) {
  auto m = std::make_unique<Impl>();
  m->dir = dir;
  m->manifest = Manifest::load(dir);
  const Manifest& man = m->manifest;
  const std::string mpath = (dir / kManifestFile).string();
  m->manifest_json = man.to_json();
  m->codec = find_codec(man.codec_id);
  if (m->codec == nullptr || m->codec->name() != man.codec) {
    throw DataCorruption(mpath, "posting codec '" + man.codec + "' (id " +
                                    std::to_string(man.codec_id) +
                                    ") is unknown to this build (it knows " + codec_names() +
                                    "); use a newer s3attn or rebuild the index");
  }
  if (man.analyzer_version != kAnalyzerVersion) {
    throw Error("index " + dir.string() + " was built with text analyzer v" +
                std::to_string(man.analyzer_version) + ", this build uses v" +
                std::to_string(kAnalyzerVersion) + "; rebuild it with --overwrite");
  }
  try {
    man.lexical.validate();
  } catch (const Error& e) {
    throw DataCorruption(mpath, std::string("lexical settings: ") + e.what());
  }
  const size_t n_layers = man.layers.size();
  m->df.assign(n_layers, std::vector<uint32_t>(man.d_latent, 0));
  m->totals.resize(n_layers);
  for (size_t l = 0; l < n_layers; ++l)
    m->totals[l].layer = man.layers[l];
  std::vector<LexicalSegment> lex_segments;
  std::vector<DenseSegment> dense_segments;
  for (const SegmentEntry& e : man.segments) {
    SegmentView s;
    s.entry = e;
    const fs::path sd = dir / e.dir;
    const bool v = options.verify_checksums;
    if (man.content == IndexContent::kLexicalOnly) refuse_feature_files(sd, mpath);
    s.files.push_back(open_segment_file(sd, e, kDocsFile, FileKind::kDocs, mpath, v));
    s.files.push_back(open_segment_file(sd, e, kTextFile, FileKind::kText, mpath, v));
    s.files.push_back(open_segment_file(sd, e, kTokensFile, FileKind::kTokens, mpath, v));
    s.files.push_back(open_segment_file(sd, e, kLexicalFile, FileKind::kLexical, mpath, v));
    for (size_t l = 0; l < n_layers; ++l) {
      s.files.push_back(open_segment_file(sd, e, postings_file_name(man.layers[l]),
                                          FileKind::kPostings, mpath, v));
    }
    parse_docs(s, s.files[0]);
    s.text = s.files[1].body;
    parse_tokens(s, s.files[2]);
    LexicalSegment lex =
        LexicalSegment::parse(s.files[3].body, s.files[3].file.path(), e.n_docs, e.n_tokens);
    if (lex.header.n_passages != e.n_passages)
      BodyReader({}, s.files[3].file.path()).fail("passage count differs from the manifest's");
    for (const PassageRecord& p : lex.passages) {
      if (p.byte_end > s.docs[p.doc].text_bytes)
        BodyReader({}, s.files[3].file.path()).fail("passage byte range outside its document");
    }
    lex.doc_base = e.doc_base;
    lex.token_base = e.token_base;
    lex.passage_base = e.passage_base;
    lex_segments.push_back(lex);
    for (size_t l = 0; l < n_layers; ++l) {
      s.layers.push_back(parse_postings(s, s.files[4 + l], man, static_cast<uint32_t>(l)));
      const LayerView& lv = s.layers.back();
      for (uint32_t f = 0; f < man.d_latent; ++f)
        m->df[l][f] += lv.df[f];
      m->totals[l].postings += lv.header.n_postings;
      m->totals[l].postings_bytes += lv.header.data_bytes;
      m->totals[l].file_bytes += s.files[4 + l].file.size();
    }
    if (man.dense) {
      CheckedFile f = open_segment_file(sd, e, kDenseFile, FileKind::kDense, mpath, v);
      DenseSegment d = DenseSegment::parse(f.body, f.file.path(), e.n_passages, man.dense->dim);
      d.passage_base = e.passage_base;
      dense_segments.push_back(d);
      s.files.push_back(std::move(f));
    } else if (e.files.count(kDenseFile)) {
      throw DataCorruption(
          mpath, "segment " + e.dir + " lists " + kDenseFile +
                     " but the manifest has no dense section; rebuild the index with --overwrite");
    }
    SegmentSummary sum{e.dir,      e.doc_base,     e.n_docs,     e.token_base,
                       e.n_tokens, e.passage_base, e.n_passages, 0};
    for (const CheckedFile& f : s.files)
      sum.file_bytes += f.file.size();
    m->file_bytes += sum.file_bytes;
    m->summaries.push_back(sum);
    m->segments.push_back(std::move(s));
  }
  m->lexical = LexicalIndex(man.lexical, std::move(lex_segments));
  if (man.dense) m->dense.emplace(man.dense->dim, std::move(dense_segments));
  return IndexReader(std::move(m));
}

const fs::path& IndexReader::dir() const {
  return impl_->dir;
}
const json& IndexReader::manifest() const {
  return impl_->manifest_json;
}
const json& IndexReader::metadata() const {
  return impl_->manifest.metadata;
}
IndexContent IndexReader::content() const {
  return impl_->manifest.content;
}
std::span<const int> IndexReader::layers() const {
  return impl_->manifest.layers;
}
uint32_t IndexReader::d_latent() const {
  return impl_->manifest.d_latent;
}
const PostingCodec& IndexReader::codec() const {
  return *impl_->codec;
}
std::span<const SegmentSummary> IndexReader::segments() const {
  return impl_->summaries;
}
uint32_t IndexReader::n_documents() const {
  return impl_->manifest.n_docs();
}
uint32_t IndexReader::n_tokens() const {
  return impl_->manifest.n_tokens();
}

DocumentView IndexReader::document(uint32_t doc) const {
  const SegmentView& s = impl_->segment_of_doc(doc);
  const DocRecord& r = s.docs[doc - s.entry.doc_base];
  DocumentView v;
  v.id = doc;
  v.name = as_sv(s.names, r.name_offset, r.name_bytes);
  v.token_begin = s.entry.token_base + r.token_begin;
  v.token_end = s.entry.token_base + r.token_end;
  v.text = as_sv(s.text, r.text_offset, r.text_bytes);
  return v;
}

uint32_t IndexReader::document_at(uint32_t position) const {
  const auto& segs = impl_->segments;
  if (position >= n_tokens()) {
    throw std::out_of_range("position " + std::to_string(position) + " out of range (" +
                            std::to_string(n_tokens()) + " tokens)");
  }
  auto it =
      std::upper_bound(segs.begin(), segs.end(), position,
                       [](uint32_t p, const SegmentView& s) { return p < s.entry.token_base; });
  const SegmentView& s = *(it - 1);
  const uint32_t local = position - s.entry.token_base;
  auto d = std::upper_bound(s.docs.begin(), s.docs.end(), local,
                            [](uint32_t p, const DocRecord& r) { return p < r.token_end; });
  return s.entry.doc_base + static_cast<uint32_t>(d - s.docs.begin());
}

std::span<const int32_t> IndexReader::token_ids(uint32_t doc) const {
  const SegmentView& s = impl_->segment_of_doc(doc);
  const DocRecord& r = s.docs[doc - s.entry.doc_base];
  return s.ids.subspan(r.token_begin, r.token_end - r.token_begin);
}

std::span<const TokenOffset> IndexReader::token_offsets(uint32_t doc) const {
  const SegmentView& s = impl_->segment_of_doc(doc);
  const DocRecord& r = s.docs[doc - s.entry.doc_base];
  return s.offsets.subspan(r.token_begin, r.token_end - r.token_begin);
}

std::string_view IndexReader::text_of(uint32_t token_begin, uint32_t token_end) const {
  if (token_begin >= token_end) throw std::out_of_range("text_of: empty token range");
  const uint32_t doc = document_at(token_begin);
  const DocumentView d = document(doc);
  if (token_end > d.token_end) throw std::out_of_range("text_of: token range crosses documents");
  auto offs = token_offsets(doc);
  const uint32_t b = offs[token_begin - d.token_begin].begin;
  uint32_t e = b;
  for (uint32_t t = token_begin; t < token_end; ++t)
    e = std::max(e, offs[t - d.token_begin].end);
  return d.text.substr(b, e - b);
}

uint32_t IndexReader::df(uint32_t layer_slot, uint32_t feature) const {
  return impl_->df.at(layer_slot).at(feature);
}

std::span<const uint32_t> IndexReader::df(uint32_t layer_slot) const {
  return impl_->df.at(layer_slot);
}

void IndexReader::postings(uint32_t layer_slot, uint32_t feature,
                           std::vector<uint32_t>& out) const {
  postings(layer_slot, feature, 0, std::numeric_limits<uint32_t>::max(), out);
}

namespace {

// Calls decode(segment, list bytes, n) -> {bytes used, last value} for every segment holding
// postings of `feature` at `layer_slot` inside [begin, end), in segment order, and refuses a list
// that does not decode to exactly its bytes and positions inside its segment.
template <class Decode>
void for_each_list(const std::vector<SegmentView>& segments, const char* what, size_t n_slots,
                   uint32_t d_latent, uint32_t layer_slot, uint32_t feature, uint32_t begin,
                   uint32_t end, Decode decode) {
  if (layer_slot >= n_slots || feature >= d_latent) {
    throw std::out_of_range(std::string(what) + ": layer slot " + std::to_string(layer_slot) +
                            " / feature " + std::to_string(feature) + " out of range");
  }
  for (const SegmentView& s : segments) {
    const LayerView& l = s.layers[layer_slot];
    const uint32_t n = l.df[feature];
    if (n == 0) continue;
    const uint64_t seg_begin = s.entry.token_base, seg_end = seg_begin + s.entry.n_tokens;
    if (seg_end <= begin || seg_begin >= end) continue;  // outside the caller's range
    const uint8_t* data = l.data + l.offsets[feature];
    const uint64_t len = l.offsets[feature + 1] - l.offsets[feature];
    // The span runs to the end of the file (footer included) so SIMD decoders may over-read.
    const auto [used, last] =
        decode(s, std::span<const uint8_t>(data, static_cast<size_t>(l.file_end - data)), n);
    if (used != len || last >= s.entry.n_tokens) {
      throw DataCorruption(l.path, "posting list of feature " + std::to_string(feature) +
                                       " does not decode; rebuild the index with --overwrite");
    }
  }
}

}  // namespace

void IndexReader::postings(uint32_t layer_slot, uint32_t feature, uint32_t begin, uint32_t end,
                           std::vector<uint32_t>& out) const {
  out.resize(feature < d_latent() && layer_slot < impl_->df.size() ? impl_->df[layer_slot][feature]
                                                                   : 0);
  size_t k = 0;
  for_each_list(impl_->segments, "postings", impl_->df.size(), d_latent(), layer_slot, feature,
                begin, end, [&](const SegmentView& s, std::span<const uint8_t> data, uint32_t n) {
                  const size_t used = impl_->codec->decode(data, n, out.data() + k);
                  const uint32_t last = out[k + n - 1];
                  if (s.entry.token_base != 0) {
                    for (uint32_t i = 0; i < n; ++i)
                      out[k + i] += s.entry.token_base;
                  }
                  k += n;
                  return std::pair{used, last};
                });
  out.resize(k);
}

void IndexReader::add_postings(uint32_t layer_slot, uint32_t feature, uint32_t begin, uint32_t end,
                               float weight, float* acc) const {
  for_each_list(impl_->segments, "add_postings", impl_->df.size(), d_latent(), layer_slot, feature,
                begin, end, [&](const SegmentView& s, std::span<const uint8_t> data, uint32_t n) {
                  const PostingCodec::AddTarget target{acc, weight, s.entry.token_base, begin, end};
                  uint32_t last = 0;
                  const size_t used = impl_->codec->decode_add(data, n, target, &last);
                  return std::pair{used, last};
                });
}

LayerTotals IndexReader::totals(uint32_t layer_slot) const {
  return impl_->totals.at(layer_slot);
}

uint64_t IndexReader::total_postings() const {
  uint64_t n = 0;
  for (const LayerTotals& t : impl_->totals)
    n += t.postings;
  return n;
}

uint64_t IndexReader::total_file_bytes() const {
  return impl_->file_bytes;
}

const LexicalIndex& IndexReader::lexical() const {
  return impl_->lexical;
}

const DenseIndex* IndexReader::dense() const {
  return impl_->dense ? &*impl_->dense : nullptr;
}

}  // namespace s3::index
