#include "index/index_merge.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <thread>

#include "core/base/error.h"
#include "index/index_part.h"
#include "index/index_reader.h"
#include "index/json_diff.h"
#include "index/manifest.h"
#include "index/parallel.h"
#include "index/text_analyzer.h"

namespace s3::index {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// What two builds must share to be parts of one index: the manifest's settings, the metadata
// (model, SAE, tokenizer, scan configuration) and the record's world size and input.
json build_settings(const Manifest& m, const std::vector<std::string>& ignore_keys, bool rank) {
  std::vector<std::string> ignore = ignore_keys;
  ignore.push_back(kPartKey);
  json part = json::object();
  if (m.metadata.is_object() && m.metadata.contains(kPartKey) && m.metadata[kPartKey].is_object()) {
    const json& r = m.metadata[kPartKey];
    for (const char* key : {"world", "input"})
      if (r.contains(key)) part[key] = r[key];
    if (rank && r.contains("rank")) part["rank"] = r["rank"];
  }
  return {{"content", m.content == IndexContent::kLexicalOnly ? kLexicalOnlyContent : "sae"},
          {"layers", m.layers},
          {"d_latent", m.d_latent},
          {"codec", m.codec},
          {"lexical",
           {{"target_words", m.lexical.target_words},
            {"language", m.lexical.language},
            {"analyzer_version", m.analyzer_version}}},
          {"metadata", without_keys(m.metadata, ignore)},
          {"part", part}};
}

struct Part {
  fs::path path;
  std::optional<IndexReader> reader;
  Manifest manifest;
  PartRecord record;

  std::string label() const { return "rank " + std::to_string(record.rank); }
  bool holds(uint64_t doc) const { return doc >= record.doc_begin && doc < record.doc_end; }
  uint32_t doc_tokens(uint64_t doc) const {
    return reader->document(static_cast<uint32_t>(doc - record.doc_begin)).n_tokens();
  }
  [[noreturn]] void corrupt(const std::string& what) const {
    throw DataCorruption(path.string(), what + "; build this rank's part again");
  }
  // (doc, its token count) is the same boundary as (doc + 1, 0).
  PartPosition normalized(PartPosition p) const {
    return p.token == doc_tokens(p.doc) ? PartPosition{p.doc + 1, 0} : p;
  }
};

std::string position_text(PartPosition p) {
  return "document " + std::to_string(p.doc) + " token " + std::to_string(p.token);
}

// The record against the part's own documents.
void check_record(const Part& p) {
  const PartRecord& r = p.record;
  if (r.world == 0 || r.rank >= r.world)
    p.corrupt("its part record says rank " + std::to_string(r.rank) + " of " +
              std::to_string(r.world));
  if (r.doc_begin >= r.doc_end || r.doc_end > r.input_documents ||
      p.reader->n_documents() != r.doc_end - r.doc_begin) {
    p.corrupt("its part record lists input documents [" + std::to_string(r.doc_begin) + ", " +
              std::to_string(r.doc_end) + ") of " + std::to_string(r.input_documents) +
              " but it holds " + std::to_string(p.reader->n_documents()));
  }
  const bool empty = r.begin == r.end;
  const bool ok = r.begin.doc == r.doc_begin && r.begin.token <= p.doc_tokens(r.begin.doc) &&
                  (empty ? r.doc_end == r.doc_begin + 1
                         : r.end.doc + 1 == r.doc_end && r.begin < r.end &&
                               r.begin.token < p.doc_tokens(r.begin.doc) && r.end.token >= 1 &&
                               r.end.token <= p.doc_tokens(r.end.doc));
  if (!ok) {
    p.corrupt("its part record's range, " + position_text(r.begin) + " to " + position_text(r.end) +
              ", does not fit its documents");
  }
  if (empty && p.reader->total_postings() != 0)
    p.corrupt("it holds postings but its part record's range is empty");
}

std::string expected_names(const std::vector<Part>& parts, const std::vector<uint32_t>& ranks,
                           uint32_t world) {
  // <index>.part-R-of-W -> <index>, to name the missing parts the way the ranks write them.
  const std::string first = parts.front().path.filename().string();
  const std::string tag =
      ".part-" + std::to_string(parts.front().record.rank) + "-of-" + std::to_string(world);
  std::string out;
  for (uint32_t r : ranks) {
    out += out.empty() ? "" : ", ";
    if (first.size() > tag.size() && first.ends_with(tag)) {
      out +=
          part_path(parts.front().path.parent_path() / first.substr(0, first.size() - tag.size()),
                    r, world)
              .string();
    } else {
      out += "rank " + std::to_string(r);
    }
  }
  return out;
}

}  // namespace

std::string part_mismatch(const fs::path& dir, const IndexWriterOptions& build) {
  const Manifest have = Manifest::load(dir);
  Manifest want;
  want.content = build.content;
  want.layers = build.layers;
  want.d_latent = build.d_latent;
  want.codec = build.codec;
  want.lexical = build.lexical;
  want.analyzer_version = kAnalyzerVersion;
  want.metadata = build.metadata;
  const std::vector<std::string>& ignore = build.append_ignore_metadata_keys;
  return json_diff(build_settings(have, ignore, true), build_settings(want, ignore, true), "there",
                   "this run");
}

MergeStats merge_parts(std::span<const fs::path> paths, const MergeOptions& options) {
  const auto t0 = Clock::now();
  if (paths.empty()) throw UsageError("merge: no parts given");
  MergeStats stats;

  // 1. Open every part (all checksums verified) and read its record.
  std::vector<Part> parts(paths.size());
  parallel_for_each(paths.size(), resolve_threads(options.threads), [&](size_t i) {
    Part& p = parts[i];
    p.path = paths[i];
    try {
      p.reader.emplace(IndexReader::open(p.path));
    } catch (const DataCorruption& e) {
      // The reader's advice (rebuild the index with --overwrite) is for an index, not a part.
      std::string what = std::string(e.what()).substr(e.path().size() + 2);
      if (const size_t cut = what.find("; rebuild "); cut != std::string::npos) what.resize(cut);
      throw DataCorruption(e.path(), what + "; the part " + p.path.string() +
                                         " is damaged: run the rank that wrote it again with "
                                         "--overwrite (docs/scale-out.md, \"Resuming\")");
    }
    p.manifest = Manifest::from_json(p.reader->manifest(), (p.path / kManifestFile).string());
    const json& meta = p.reader->metadata();
    if (!meta.is_object() || !meta.contains(kPartKey)) {
      throw Error(p.path.string() +
                  " is not a part of a sharded build (its metadata has no \"part\" record); "
                  "merge the <INDEX>.part-R-of-W directories that `s3attn index` writes under "
                  "torchrun or srun");
    }
    p.record = PartRecord::from_json(meta.at(kPartKey), (p.path / kManifestFile).string());
  });
  stats.open_s = seconds_since(t0);

  // Sharded builds make no dense passage embeddings (s3attn index refuses --dense-model there);
  // a part with them would lose them here.
  for (const Part& p : parts) {
    if (p.manifest.dense) {
      throw Error(p.path.string() +
                  " holds dense passage embeddings, which merge does not carry over; build the "
                  "index with --dense-model in one process");
    }
  }

  // 2. One build: the same settings and input, every rank once.
  std::sort(parts.begin(), parts.end(),
            [](const Part& a, const Part& b) { return a.record.rank < b.record.rank; });
  const uint32_t world = parts.front().record.world;
  const json settings = build_settings(parts.front().manifest, options.ignore_metadata_keys, false);
  for (const Part& p : parts) {
    const std::string diff =
        json_diff(settings, build_settings(p.manifest, options.ignore_metadata_keys, false),
                  parts.front().path.filename().string(), p.path.filename().string());
    if (!diff.empty()) {
      throw Error("cannot merge " + parts.front().path.string() + " and " + p.path.string() +
                  ": they are not parts of one build (other input, world size, model, SAE, "
                  "tokenizer or settings): " +
                  diff);
    }
  }
  for (const Part& p : parts)
    check_record(p);
  for (size_t i = 1; i < parts.size(); ++i) {
    if (parts[i].record.rank == parts[i - 1].record.rank) {
      throw Error("rank " + std::to_string(parts[i].record.rank) + " of " + std::to_string(world) +
                  " is given twice: " + parts[i - 1].path.string() + " and " +
                  parts[i].path.string());
    }
  }
  std::vector<uint32_t> missing;
  for (uint32_t r = 0, i = 0; r < world; ++r) {
    if (i < parts.size() && parts[i].record.rank == r) {
      ++i;
    } else {
      missing.push_back(r);
    }
  }
  if (!missing.empty()) {
    throw Error("cannot merge: " + std::to_string(missing.size()) + " of the " +
                std::to_string(world) + " parts missing (" + expected_names(parts, missing, world) +
                "); run those ranks again (docs/scale-out.md, \"Resuming\")");
  }

  // 3. The ranges tile the input: each part starts where the previous one ends.
  const uint64_t n_docs = parts.front().record.input_documents;
  PartPosition at{0, 0};
  for (const Part& p : parts) {
    const PartPosition begin = p.normalized(p.record.begin);
    if (begin != at) {
      throw Error("cannot merge: " + p.path.string() + " starts at " +
                  position_text(p.record.begin) + " but the parts before it end at " +
                  position_text(at) + "; build its rank again");
    }
    at = p.normalized(p.record.end);
  }
  if (at != PartPosition{n_docs, 0}) {
    throw Error("cannot merge: the parts end at " + position_text(at) + ", not at the end of the " +
                std::to_string(n_docs) + " input documents");
  }

  // 4. Documents in input order, each from the first part holding it; the others must agree.
  IndexWriterOptions w;
  w.out = options.out;
  w.mode = options.mode;
  const Manifest& m0 = parts.front().manifest;
  w.content = m0.content;  // lexical-only parts merge into a lexical-only index
  w.layers = m0.layers;
  w.d_latent = m0.d_latent;
  w.codec = m0.codec;
  w.metadata = without_keys(m0.metadata, std::vector<std::string>{kPartKey});
  w.append_ignore_metadata_keys = options.ignore_metadata_keys;
  w.lexical = m0.lexical;
  w.commit_threads = options.threads;
  w.fsync = options.fsync;
  IndexWriter writer(w);
  std::vector<DocumentRange> ranges;
  ranges.reserve(n_docs);
  size_t owner = 0;
  for (uint64_t d = 0; d < n_docs; ++d) {
    while (!parts[owner].holds(d))
      ++owner;  // the tiling guarantees a holder
    const IndexReader& r = *parts[owner].reader;
    const auto local = static_cast<uint32_t>(d - parts[owner].record.doc_begin);
    const DocumentView doc = r.document(local);
    for (size_t o = owner + 1; o < parts.size() && parts[o].holds(d); ++o) {
      const IndexReader& other = *parts[o].reader;
      const auto l = static_cast<uint32_t>(d - parts[o].record.doc_begin);
      const DocumentView od = other.document(l);
      const auto ids = r.token_ids(local), oids = other.token_ids(l);
      const auto offs = r.token_offsets(local), ooffs = other.token_offsets(l);
      if (od.name != doc.name || od.text != doc.text ||
          !std::equal(ids.begin(), ids.end(), oids.begin(), oids.end()) ||
          !std::equal(offs.begin(), offs.end(), ooffs.begin(), ooffs.end())) {
        throw Error("cannot merge: " + parts[owner].path.string() + " and " +
                    parts[o].path.string() + " hold different versions of input document " +
                    std::to_string(d) + " ('" + std::string(doc.name) + "')");
      }
    }
    ranges.push_back(
        writer.add_document(doc.name, doc.text, r.token_ids(local), r.token_offsets(local)));
  }

  // 5. Postings, part after part: part-local position p is global p + the global position of the
  // part's first document.
  const auto t_postings = Clock::now();
  for (const Part& p : parts) {
    const PartRecord& rec = p.record;
    const uint32_t begin = ranges[rec.begin.doc].token_begin + rec.begin.token;
    const uint32_t end = ranges[rec.end.doc].token_begin + rec.end.token;
    if (end <= begin) continue;
    const uint32_t shift = ranges[rec.doc_begin].token_begin;
    for (uint32_t slot = 0; slot < w.layers.size(); ++slot) {
      try {
        writer.add_feature_lists(slot, begin, end - begin,
                                 [&](uint32_t f, std::vector<uint32_t>& out) {
                                   p.reader->postings(slot, f, out);
                                   for (uint32_t& pos : out)
                                     pos += shift;
                                 });
      } catch (const DataCorruption&) {
        throw;
      } catch (const Error& e) {
        p.corrupt(std::string("postings outside its part record's range: ") + e.what());
      }
    }
    stats.tokens += end - begin;
  }
  stats.postings_s = seconds_since(t_postings);
  stats.parts = static_cast<uint32_t>(parts.size());
  stats.documents = static_cast<uint32_t>(n_docs);
  parts.clear();  // unmap the parts before the commit writes as much again
  stats.commit = writer.commit();
  stats.seconds = seconds_since(t0);
  return stats;
}

std::vector<fs::path> wait_for_parts(
    const fs::path& index, const IndexWriterOptions& build, uint32_t world, double timeout_s,
    double report_s, const std::function<void(const std::vector<uint32_t>&)>& waiting) {
  const auto t0 = Clock::now();
  auto last_report = t0;
  std::vector<fs::path> paths;
  std::vector<bool> ready(world, false);
  for (uint32_t r = 0; r < world; ++r)
    paths.push_back(part_path(index, r, world));
  for (;;) {
    std::vector<uint32_t> missing;
    for (uint32_t r = 0; r < world; ++r) {
      if (ready[r]) continue;
      std::error_code ec;
      // A part appears complete or not at all (its directory is renamed into place).
      if (fs::exists(paths[r] / kManifestFile, ec)) {
        IndexWriterOptions want = build;
        want.metadata[kPartKey]["rank"] = r;
        try {
          ready[r] = part_mismatch(paths[r], want).empty();
        } catch (const DataCorruption&) {
          ready[r] = false;  // being replaced, or damaged: its rank fails and says so
        }
      }
      if (!ready[r]) missing.push_back(r);
    }
    if (missing.empty()) return paths;
    const double waited = seconds_since(t0);
    if (timeout_s > 0 && waited >= timeout_s) {
      std::string names;
      for (uint32_t r : missing)
        names += (names.empty() ? "" : ", ") + paths[r].string();
      throw Error("gave up after " + std::to_string(static_cast<long long>(waited)) +
                  " s waiting for " + std::to_string(missing.size()) + " of " +
                  std::to_string(world) + " parts (" + names +
                  "); run those ranks again, then `s3attn merge --out " + index.string() +
                  " <the " + std::to_string(world) + " parts>` (docs/scale-out.md, \"Resuming\")");
    }
    if (waiting && std::chrono::duration<double>(Clock::now() - last_report).count() >= report_s) {
      waiting(missing);
      last_report = Clock::now();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace s3::index
