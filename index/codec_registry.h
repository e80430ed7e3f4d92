// Registry of posting codecs. Ids are stable and never reused:
//   1  varint-delta        LEB128 of d-gaps minus one (first value as is)
//   2  streamvbyte-delta   libstreamvbyte (Lemire et al.) on d-gaps, SIMD decode
// The default is chosen by measurement; see docs/index-format.md ("Choosing the default codec").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "index/codec.h"

namespace s3::index {

inline constexpr std::string_view kDefaultCodec = "varint-delta";

// Throws s3::UsageError listing the known names when `name` is unknown.
const PostingCodec& codec_by_name(std::string_view name);
// Returns nullptr for an unknown id (the reader turns that into DataCorruption naming the file).
const PostingCodec* find_codec(uint32_t id);
const PostingCodec* find_codec(std::string_view name);
std::vector<const PostingCodec*> all_codecs();
std::string codec_names();  // "varint-delta, streamvbyte-delta"

}  // namespace s3::index
