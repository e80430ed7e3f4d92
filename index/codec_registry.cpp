#include "index/codec_registry.h"

#include <memory>

#include "core/base/error.h"
#include "index/streamvbyte_codec.h"
#include "index/varint_codec.h"

namespace s3::index {

namespace {
const std::vector<std::unique_ptr<PostingCodec>>& registry() {
  static const auto* codecs = [] {
    auto* v = new std::vector<std::unique_ptr<PostingCodec>>();
    v->push_back(std::make_unique<VarintDeltaCodec>());
    v->push_back(std::make_unique<StreamVByteDeltaCodec>());
    return v;
  }();
  return *codecs;
}
}  // namespace

const PostingCodec* find_codec(uint32_t id) {
  for (const auto& c : registry()) {
    if (c->id() == id) return c.get();
  }
  return nullptr;
}

const PostingCodec* find_codec(std::string_view name) {
  for (const auto& c : registry()) {
    if (c->name() == name) return c.get();
  }
  return nullptr;
}

const PostingCodec& codec_by_name(std::string_view name) {
  const PostingCodec* c = find_codec(name);
  if (c == nullptr) {
    throw UsageError("unknown posting codec '" + std::string(name) + "'; known: " + codec_names());
  }
  return *c;
}

std::vector<const PostingCodec*> all_codecs() {
  std::vector<const PostingCodec*> out;
  for (const auto& c : registry())
    out.push_back(c.get());
  return out;
}

std::string codec_names() {
  std::string s;
  for (const auto& c : registry()) {
    if (!s.empty()) s += ", ";
    s += c->name();
  }
  return s;
}

}  // namespace s3::index
