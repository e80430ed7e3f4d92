#include "index/segment_writer.h"

#include <cstdio>
#include <mutex>

#include "index/dense_index.h"
#include "index/parallel.h"
#include "index/segment_format.h"

namespace s3::index {

namespace fs = std::filesystem;

std::string postings_file_name(int layer) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "postings-l%03d.bin", layer);
  return buf;
}

namespace {

FileDigest write_docs(const fs::path& path, const SegmentContent& c, bool fsync) {
  FileWriter w(path, FileKind::kDocs);
  DocsHeader h{};
  h.n_docs = c.n_docs();
  for (const std::string& n : c.names)
    h.names_bytes += n.size();
  w.write_pod(h);
  uint64_t name_off = 0;
  for (uint32_t d = 0; d < c.n_docs(); ++d) {
    DocRecord r{};
    r.token_begin = c.token_offsets[d];
    r.token_end = c.token_offsets[d + 1];
    r.text_offset = c.text_offsets[d];
    r.text_bytes = c.text_offsets[d + 1] - c.text_offsets[d];
    r.name_offset = name_off;
    r.name_bytes = c.names[d].size();
    name_off += r.name_bytes;
    w.write_pod(r);
  }
  for (const std::string& n : c.names)
    w.write(n.data(), n.size());
  return w.finish(fsync);
}

FileDigest write_text(const fs::path& path, const SegmentContent& c, bool fsync) {
  FileWriter w(path, FileKind::kText);
  w.write(c.texts.data(), c.texts.size());
  return w.finish(fsync);
}

FileDigest write_tokens(const fs::path& path, const SegmentContent& c, bool fsync) {
  FileWriter w(path, FileKind::kTokens);
  TokensHeader h{};
  h.n_tokens = c.n_tokens();
  w.write_pod(h);
  w.write_span(std::span<const int32_t>(c.ids));
  w.pad_to(8);
  w.write_span(std::span<const TokenOffset>(c.offsets));
  return w.finish(fsync);
}

FileDigest write_postings(const fs::path& path, const PostingAccumulator& acc,
                          const PostingCodec& codec, int layer, uint32_t slot, uint32_t n_tokens,
                          bool fsync) {
  const uint32_t d = acc.d_latent();
  std::vector<uint32_t> df(d);
  std::vector<uint64_t> offsets(size_t{d} + 1, 0);
  uint64_t n_postings = 0;
  for (uint32_t f = 0; f < d; ++f) {
    df[f] = acc.df(f);
    n_postings += df[f];
    offsets[f + 1] = offsets[f] + acc.bytes(f).size();
  }
  FileWriter w(path, FileKind::kPostings);
  PostingsHeader h{};
  h.codec_id = codec.id();
  h.layer = layer;
  h.layer_slot = slot;
  h.d_latent = d;
  h.n_tokens = n_tokens;
  h.n_postings = n_postings;
  h.data_bytes = offsets[d];
  w.write_pod(h);
  w.write_span(std::span<const uint32_t>(df));
  w.pad_to(8);
  w.write_span(std::span<const uint64_t>(offsets));
  for (uint32_t f = 0; f < d; ++f) {
    auto b = acc.bytes(f);
    w.write(b.data(), b.size());
  }
  return w.finish(fsync);
}

}  // namespace

SegmentWriteResult write_segment(const fs::path& dir, const SegmentContent& content,
                                 std::vector<PostingAccumulator>& layers,
                                 const std::vector<int>& layer_ids, const PostingCodec& codec,
                                 const LexicalOptions& lexical, const DenseRows& dense,
                                 unsigned threads, bool fsync) {
  // Transcoding is parallel over features inside each layer.
  for (PostingAccumulator& acc : layers)
    acc.transcode(codec, threads);

  SegmentWriteResult res;
  const size_t n_layers = layers.size();
  res.postings.resize(n_layers);
  res.postings_bytes.resize(n_layers);
  std::mutex mu;
  auto record = [&](const std::string& name, FileDigest d) {
    std::lock_guard<std::mutex> lock(mu);
    res.files[name] = d;
  };
  // Tasks: 0 = lexical (analysis + write) and dense, 1 = docs/text/tokens, 2.. = one postings file
  // per layer.
  parallel_for_each(2 + n_layers, threads, [&](size_t task) {
    if (task == 0) {
      LexicalBuilder lex(lexical);
      for (uint32_t d = 0; d < content.n_docs(); ++d) {
        const uint32_t tb = content.token_offsets[d], te = content.token_offsets[d + 1];
        std::string_view text(content.texts.data() + content.text_offsets[d],
                              content.text_offsets[d + 1] - content.text_offsets[d]);
        lex.add_document(d, text,
                         std::span<const TokenOffset>(content.offsets).subspan(tb, te - tb), tb);
      }
      record(kLexicalFile, lex.write(dir / kLexicalFile, fsync));
      const auto n_passages = static_cast<uint32_t>(lex.n_passages());
      if (dense.dim > 0) {  // one row per passage; the caller cut the same passages
        record(kDenseFile,
               write_dense_file(dir / kDenseFile, dense.values, n_passages, dense.dim, fsync));
      }
      std::lock_guard<std::mutex> lock(mu);
      res.n_passages = n_passages;
    } else if (task == 1) {
      record(kDocsFile, write_docs(dir / kDocsFile, content, fsync));
      record(kTextFile, write_text(dir / kTextFile, content, fsync));
      record(kTokensFile, write_tokens(dir / kTokensFile, content, fsync));
    } else {
      const size_t l = task - 2;
      const std::string name = postings_file_name(layer_ids[l]);
      record(name, write_postings(dir / name, layers[l], codec, layer_ids[l],
                                  static_cast<uint32_t>(l), content.n_tokens(), fsync));
      std::lock_guard<std::mutex> lock(mu);
      res.postings[l] = layers[l].n_postings();
      res.postings_bytes[l] = layers[l].n_bytes();
    }
  });
  return res;
}

}  // namespace s3::index
