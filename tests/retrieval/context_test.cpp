#include "retrieval/context.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/base/error.h"

namespace s3::retrieval {
namespace {

// Token i of the fake document is the text "<i>" (so range text shows its exact bounds).
std::string fake_text(TokenRange r) {
  std::string s;
  for (uint32_t t = r.begin; t < r.end; ++t)
    s += "<" + std::to_string(t) + ">";
  return s;
}

TEST(Context, JoinsInDocumentOrderWithSeparators) {
  int calls = 0;
  const RangeText text = [&](TokenRange r) {
    ++calls;
    return fake_text(r);
  };
  const std::vector<SelectedRange> ranges = {{{0, 2}, Source::kLead, 0},
                                             {{2, 3}, Source::kS3, 1},  // adjacent: no separator
                                             {{7, 8}, Source::kBm25, 2},
                                             {{9, 10}, Source::kTail, 0}};
  EXPECT_EQ(assemble_context(ranges, text), "<0><1><2>\n...\n<7>\n...\n<9>");
  EXPECT_EQ(calls, 3);  // the adjacent ranges are fetched as one
  ContextOptions o;
  o.separator = " | ";
  EXPECT_EQ(assemble_context(ranges, text, o), "<0><1><2> | <7> | <9>");
  const nlohmann::json j = o;
  EXPECT_EQ(j.at("separator"), " | ");
}

TEST(Context, EmptyAndInvalidInput) {
  const RangeText text = fake_text;
  EXPECT_EQ(assemble_context({}, text), "");
  const std::vector<SelectedRange> with_empty = {{{3, 3}, Source::kS3, 0},
                                                 {{4, 5}, Source::kS3, 0}};
  EXPECT_EQ(assemble_context(with_empty, text), "<4>");
  const std::vector<SelectedRange> overlap = {{{0, 5}, Source::kS3, 0}, {{4, 6}, Source::kBm25, 0}};
  EXPECT_THROW(assemble_context(overlap, text), Error);
  const std::vector<SelectedRange> unsorted = {{{8, 9}, Source::kS3, 0},
                                               {{1, 2}, Source::kBm25, 0}};
  EXPECT_THROW(assemble_context(unsorted, text), Error);
}

// Documents start at 0, 5 and 9; a fetch that crossed a boundary would be a bug in the caller's
// token store (IndexReader::text_of refuses it), so the fake refuses it too.
TEST(Context, GroupsEvidencePerDocumentUnderHeaders) {
  const std::vector<uint32_t> starts = {0, 5, 9};
  const RangeText text = [&](TokenRange r) {
    for (uint32_t s : starts)
      if (r.begin < s && s < r.end) throw Error("fetch crosses a document boundary");
    return fake_text(r);
  };
  const DocumentBoundaries docs{starts, [](uint32_t d) { return "doc" + std::to_string(d); }};
  // One range over the first two documents, touching ranges at the boundary of the second and
  // third, and two cut ranges inside the third.
  const std::vector<SelectedRange> ranges = {{{3, 7}, Source::kS3, 1},
                                             {{8, 9}, Source::kBm25, 2},
                                             {{9, 10}, Source::kS3, 1},
                                             {{12, 13}, Source::kTail, 0}};
  EXPECT_EQ(assemble_context(ranges, text, {}, docs),
            "[Document: doc0]\n<3><4>\n\n[Document: doc1]\n<5><6>\n...\n<8>\n\n"
            "[Document: doc2]\n<9>\n...\n<12>");
  // Without boundaries the same ranges would be fetched across documents.
  EXPECT_THROW(assemble_context(ranges, text), Error);
  ContextOptions o;
  o.document_header = "## {name} ({name})\n";
  o.document_separator = "\n";
  const std::vector<SelectedRange> one = {{{0, 1}, Source::kLead, 0}, {{10, 11}, Source::kS3, 0}};
  EXPECT_EQ(assemble_context(one, text, o, docs), "## doc0 (doc0)\n<0>\n## doc2 (doc2)\n<10>");
  const nlohmann::json j = o;
  EXPECT_EQ(j.at("document_header"), "## {name} ({name})\n");
}

TEST(Context, SplitAtDocumentsKeepsSourceAndScore) {
  const std::vector<uint32_t> starts = {0, 5, 9};
  const std::vector<SelectedRange> ranges = {{{2, 12}, Source::kBm25, 3.5f},
                                             {{12, 12}, Source::kS3, 0}};
  const std::vector<SelectedRange> cut = split_at_documents(ranges, starts);
  ASSERT_EQ(cut.size(), 4u);
  EXPECT_EQ(cut[0].range, (TokenRange{2, 5}));
  EXPECT_EQ(cut[1].range, (TokenRange{5, 9}));
  EXPECT_EQ(cut[2].range, (TokenRange{9, 12}));
  EXPECT_TRUE(cut[3].range.empty());
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(cut[i].source, Source::kBm25);
    EXPECT_EQ(cut[i].score, 3.5f);
  }
  EXPECT_EQ(split_at_documents(ranges, {}).size(), 2u);
}

}  // namespace
}  // namespace s3::retrieval
