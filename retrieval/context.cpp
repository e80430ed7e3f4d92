#include "retrieval/context.h"

#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/base/error.h"

namespace s3::retrieval {

void to_json(nlohmann::json& j, const ContextOptions& o) {
  j = nlohmann::json{{"separator", o.separator},
                     {"document_header", o.document_header},
                     {"document_separator", o.document_separator}};
}

namespace {

// Index of the document holding global position t (starts ascending, t >= starts[0]).
uint32_t document_of(std::span<const uint32_t> starts, uint32_t t) {
  const auto it = std::upper_bound(starts.begin(), starts.end(), t);
  return static_cast<uint32_t>(std::max<std::ptrdiff_t>(it - starts.begin() - 1, 0));
}

std::string header_for(const std::string& pattern, const std::string& name) {
  std::string out = pattern;
  for (size_t at = out.find("{name}"); at != std::string::npos;
       at = out.find("{name}", at + name.size()))
    out.replace(at, 6, name);
  return out;
}

}  // namespace

std::vector<SelectedRange> split_at_documents(std::span<const SelectedRange> ranges,
                                              std::span<const uint32_t> starts) {
  std::vector<SelectedRange> out;
  out.reserve(ranges.size());
  for (const SelectedRange& r : ranges) {
    uint32_t begin = r.range.begin;
    if (starts.empty() || r.range.empty()) {
      out.push_back(r);
      continue;
    }
    while (begin < r.range.end) {
      const uint32_t d = document_of(starts, begin);
      const uint32_t doc_end = d + 1 < starts.size() ? starts[d + 1] : r.range.end;
      const uint32_t end = std::min(r.range.end, doc_end);
      out.push_back({{begin, end}, r.source, r.score});
      begin = end;
    }
  }
  return out;
}

std::string assemble_context(std::span<const SelectedRange> ranges, const RangeText& text,
                             const ContextOptions& options, const DocumentBoundaries& documents) {
  const bool grouped = !documents.starts.empty();
  const std::vector<SelectedRange> cut = split_at_documents(ranges, documents.starts);
  std::string out;
  size_t i = 0;
  bool first_in_document = true;
  uint32_t current_doc = 0;
  bool any = false;
  while (i < cut.size()) {
    if (cut[i].range.empty()) {
      ++i;
      continue;
    }
    TokenRange run = cut[i].range;
    const uint32_t doc = grouped ? document_of(documents.starts, run.begin) : 0;
    size_t j = i + 1;
    for (; j < cut.size(); ++j) {
      const TokenRange& r = cut[j].range;
      if (r.empty()) continue;
      if (r.begin < run.end) {
        throw Error("assemble_context: ranges overlap or are out of order at token " +
                    std::to_string(r.begin));
      }
      // Adjacent ranges of one document: one fetch, no separator.
      if (r.begin != run.end || (grouped && document_of(documents.starts, r.begin) != doc)) break;
      run.end = r.end;
    }
    if (grouped && (!any || doc != current_doc)) {
      if (any) out += options.document_separator;
      out += header_for(options.document_header,
                        documents.name ? documents.name(doc) : std::to_string(doc));
      first_in_document = true;
      current_doc = doc;
    }
    if (!first_in_document) out += options.separator;
    out += text(run);
    first_in_document = false;
    any = true;
    i = j;
  }
  return out;
}

}  // namespace s3::retrieval
