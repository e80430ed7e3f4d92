// s3attn merge: joins the parts of a sharded `s3attn index` run into one index (docs/scale-out.md).
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/pipeline/index_metadata.h"
#include "index/index_merge.h"

namespace s3::cli {

nlohmann::json merge_summary(const index::MergeStats& stats) {
  uint64_t postings = 0;
  for (const uint64_t n : stats.commit.postings)
    postings += n;
  return {{"parts", stats.parts},
          {"documents", stats.documents},
          {"tokens", stats.tokens},
          {"postings", postings},
          {"file_bytes", stats.commit.file_bytes},
          {"open_s", stats.open_s},
          {"postings_s", stats.postings_s},
          {"commit_s", stats.commit.seconds},
          {"merge_s", stats.seconds}};
}

Command add_merge(CLI::App& root) {
  struct Args {
    std::vector<std::string> parts;
    std::string out;
    unsigned threads = 0;
    bool overwrite = false, append = false, json = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand(
      "merge", "Join the parts <INDEX>.part-R-of-W of a sharded index run into one index");
  app->add_option("parts", a->parts, "the W part directories, in any order")->required();
  app->add_option("--out", a->out, "index directory to write")->required();
  auto* overwrite =
      app->add_flag("--overwrite", a->overwrite, "replace an existing index (atomically)");
  auto* append =
      app->add_flag("--append", a->append, "add the parts' documents to an existing index");
  overwrite->excludes(append);
  app->add_option("--threads", a->threads, "threads joining posting lists (0: min(8, cores))")
      ->capture_default_str();
  app->add_flag("--json", a->json, "print the summary as JSON");

  auto run = [a]() {
    index::MergeOptions m;
    m.out = a->out;
    m.mode = a->overwrite ? index::WriteMode::kOverwrite
             : a->append  ? index::WriteMode::kAppend
                          : index::WriteMode::kCreate;
    m.ignore_metadata_keys = path_metadata_keys();  // as `s3attn index` ignores them
    m.threads = a->threads;
    const std::vector<std::filesystem::path> parts(a->parts.begin(), a->parts.end());
    const index::MergeStats stats = index::merge_parts(parts, m);
    if (a->json) {
      nlohmann::json summary = merge_summary(stats);
      summary["index"] = a->out;
      std::cout << summary.dump() << "\n";
    } else {
      std::cout << "merged " << stats.parts << " parts: " << stats.documents << " documents, "
                << stats.tokens << " tokens in " << stats.seconds << " s -> " << a->out << "\n";
    }
    return 0;
  };
  return {app, run};
}

}  // namespace s3::cli
