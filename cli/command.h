// How subcommands plug into the s3attn binary: each cmd_*.cpp registers its CLI11 subcommand with
// its options declared once, and returns the function main() runs when it is selected.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace s3::index {
struct MergeStats;
}

namespace s3::cli {

using Runner = std::function<int()>;

struct Command {
  CLI::App* app = nullptr;
  Runner run;
};

Command add_tokenize(CLI::App& root);
Command add_generate(CLI::App& root);
Command add_logits(CLI::App& root);
Command add_index(CLI::App& root);
Command add_ask(CLI::App& root);
Command add_longbench(CLI::App& root);
Command add_inspect(CLI::App& root);
Command add_embed(CLI::App& root);
Command add_merge(CLI::App& root);
// `sae` has subcommands of its own (train, eval); each is one Command.
std::vector<Command> add_sae(CLI::App& root);

// The JSON summary of a merge of index parts (merge, and rank 0 of a sharded index).
nlohmann::json merge_summary(const index::MergeStats& stats);

// Reads a whole text file given by a flag: a regular file of at most `max_bytes`
// (core/base/file_read.h); throws s3::Error naming it and `what` when it cannot.
std::string read_text_file(const std::string& path, uint64_t max_bytes, std::string_view what);

// `s` as one line of terminal text: control characters (C0, DEL, C1, U+2028/9) and bytes that are
// not UTF-8 become escapes (\n, \t, \r, \xNN, \uNNNN), so that a document name or a message
// cannot break a line or drive the terminal.
std::string printable(std::string_view s);

}  // namespace s3::cli
