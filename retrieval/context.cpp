#include "retrieval/context.h"

#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace s3::retrieval {

void to_json(nlohmann::json& j, const ContextOptions& o) {
  j = nlohmann::json{{"separator", o.separator}};
}

std::string assemble_context(std::span<const SelectedRange> ranges, const RangeText& text,
                             const ContextOptions& options) {
  std::string out;
  size_t i = 0;
  bool first = true;
  while (i < ranges.size()) {
    if (ranges[i].range.empty()) {
      ++i;
      continue;
    }
    TokenRange run = ranges[i].range;
    size_t j = i + 1;
    for (; j < ranges.size(); ++j) {
      const TokenRange& r = ranges[j].range;
      if (r.empty()) continue;
      if (r.begin < run.end) {
        throw Error("assemble_context: ranges overlap or are out of order at token " +
                    std::to_string(r.begin));
      }
      if (r.begin != run.end) break;
      run.end = r.end;  // adjacent: one fetch, no separator
    }
    if (!first) out += options.separator;
    out += text(run);
    first = false;
    i = j;
  }
  return out;
}

}  // namespace s3::retrieval
