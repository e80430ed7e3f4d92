#include "index/index_part.h"

#include "core/base/error.h"

namespace s3::index {

using nlohmann::json;

json PartRecord::to_json() const {
  return {{"rank", rank},
          {"world", world},
          {"input",
           {{"documents", input_documents}, {"bytes", input_bytes}, {"xxh3_64", input_xxh3_64}}},
          {"documents", {doc_begin, doc_end}},
          {"begin", {begin.doc, begin.token}},
          {"end", {end.doc, end.token}}};
}

PartRecord PartRecord::from_json(const json& j, const std::string& where) {
  try {
    PartRecord r;
    r.rank = j.at("rank").get<uint32_t>();
    r.world = j.at("world").get<uint32_t>();
    const json& input = j.at("input");
    r.input_documents = input.at("documents").get<uint64_t>();
    r.input_bytes = input.at("bytes").get<uint64_t>();
    r.input_xxh3_64 = input.at("xxh3_64").get<std::string>();
    const json& docs = j.at("documents");
    const json& begin = j.at("begin");
    const json& end = j.at("end");
    if (docs.size() != 2 || begin.size() != 2 || end.size() != 2) throw Error("pairs expected");
    r.doc_begin = docs[0].get<uint64_t>();
    r.doc_end = docs[1].get<uint64_t>();
    r.begin = {begin[0].get<uint64_t>(), begin[1].get<uint32_t>()};
    r.end = {end[0].get<uint64_t>(), end[1].get<uint32_t>()};
    return r;
  } catch (const std::exception& e) {
    throw DataCorruption(
        where, std::string("malformed \"part\" record in the metadata (") + e.what() + ")");
  }
}

std::filesystem::path part_path(const std::filesystem::path& index, uint32_t rank, uint32_t world) {
  std::filesystem::path p = index.lexically_normal();
  if (!p.has_filename()) p = p.parent_path();
  return p.parent_path() /
         (p.filename().string() + ".part-" + std::to_string(rank) + "-of-" + std::to_string(world));
}

}  // namespace s3::index
