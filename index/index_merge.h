// Joins the W parts of a sharded index build (index_part.h) into one index, identical to the index
// one process builds from the same input: the same documents in input order, token ids and
// positions, postings, passages and BM25 statistics, byte for byte (docs/scale-out.md). The result
// is written and published like every index (index_writer.h: atomic create, overwrite or append).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "index/index_writer.h"

namespace s3::index {

struct MergeOptions {
  std::filesystem::path out;
  WriteMode mode = WriteMode::kCreate;
  // Top-level metadata keys the parts may differ in (where each rank found the model); the merged
  // index keeps rank 0's values. Also ignored when appending to an existing index.
  std::vector<std::string> ignore_metadata_keys;
  unsigned threads = 0;  // 0 = min(8, hardware threads)
  bool fsync = true;
};

struct MergeStats {
  uint32_t parts = 0;
  uint32_t documents = 0;
  uint64_t tokens = 0;
  double open_s = 0;      // opening and verifying the parts (every checksum)
  double postings_s = 0;  // joining the posting lists
  CommitStats commit;     // writing and publishing the merged index
  double seconds = 0;     // all of it
};

// Throws s3::Error (DataCorruption for a damaged part) with one line naming the part at fault when
// the parts do not make one complete build: a part missing or given twice, parts of another world
// size, input, model, SAE or settings, ranges that do not tile the input. Nothing is written then.
MergeStats merge_parts(std::span<const std::filesystem::path> parts, const MergeOptions& options);

// Why the index at `dir` is not the part this build would write (empty when it is): its layers,
// SAE width, codec, lexical settings or metadata (the part record included) differ from `build`'s,
// apart from build.append_ignore_metadata_keys. Reads only its manifest; throws DataCorruption when
// that is unreadable.
std::string part_mismatch(const std::filesystem::path& dir, const IndexWriterOptions& build);

// The rendezvous of a sharded build's rank 0 (docs/scale-out.md): polls the file system until the
// parts of all `world` ranks exist beside `index` and each is the part `build` describes for its
// rank (`build.metadata` holds the part record of any rank; a part left by another build does not
// count, its rank is expected to replace it). Calls waiting(ranks still missing) every
// `report_s` seconds. Throws s3::Error naming the missing parts after `timeout_s` seconds (0 = no
// limit). Returns the parts' paths in rank order.
std::vector<std::filesystem::path> wait_for_parts(
    const std::filesystem::path& index, const IndexWriterOptions& build, uint32_t world,
    double timeout_s, double report_s,
    const std::function<void(const std::vector<uint32_t>& missing)>& waiting);

}  // namespace s3::index
