// Test-only driver of s3::Tokenizer for tests/core/test_tokenizer_parity.py.
//
//   tokenize_tool TOKENIZER_JSON TEXT_FILE
//       {"ids": [...], "offsets": [[b, e], ...], "decoded": ..., "decoded_skip_special": ...}
//   tokenize_tool TOKENIZER_JSON --batch TEXTS_JSON     (a JSON list of strings)
//       a JSON list with one such object per text ({"error": ...} where encode throws)
//   tokenize_tool TOKENIZER_JSON --normalize TEXTS_JSON
//       a JSON list with the normalized text of each text (tokenizers' normalize_str)
//   tokenize_tool TOKENIZER_JSON --pre-tokenize TEXTS_JSON
//       a JSON list with the pre-tokenizer's words of each text (pre_tokenize_str, words only)
//   tokenize_tool TOKENIZER_JSON --bench TEXT_FILE [REPEATS]
//       {"bytes", "tokens", "load_s", "first_s", "best_s", "tokens_per_s"} (tokens_per_s: best run)
//
// Offsets are byte offsets into the text. Errors: one line on stderr, exit code 1.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "core/base/error.h"
#include "core/base/file_read.h"
#include "core/tokenizer/tokenizer.h"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string read_file(const std::string& path) {
  return s3::read_regular_file(path, s3::kGiB * 4, "text file");
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

json result(const s3::Tokenizer& tokenizer, const std::string& text) {
  const s3::Encoding e = tokenizer.encode_with_offsets(text);
  json offsets = json::array();
  for (const auto& [b, end] : e.offsets)
    offsets.push_back({b, end});
  return {{"ids", e.ids},
          {"offsets", offsets},
          {"decoded", tokenizer.decode(e.ids)},
          {"decoded_skip_special", tokenizer.decode(e.ids, true)}};
}

int run(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: tokenize_tool TOKENIZER_JSON (TEXT_FILE | --batch TEXTS_JSON | "
                 "--normalize TEXTS_JSON "
                 "| --pre-tokenize TEXTS_JSON | --bench TEXT_FILE [N])\n";
    return 2;
  }
  const std::string mode = argv[2];
  const auto t0 = Clock::now();
  const s3::Tokenizer tokenizer = s3::Tokenizer::from_file(argv[1]);
  const double load_s = seconds_since(t0);
  const auto dump = [](const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
  };

  if (mode == "--batch" && argc == 4) {
    const json texts = json::parse(read_file(argv[3]));
    json out = json::array();
    for (const auto& t : texts) {
      try {
        out.push_back(result(tokenizer, t.get<std::string>()));
      } catch (const s3::Error& e) {
        out.push_back({{"error", e.what()}});
      }
    }
    std::cout << dump(out) << "\n";
    return 0;
  }
  if ((mode == "--normalize" || mode == "--pre-tokenize") && argc == 4) {
    const json texts = json::parse(read_file(argv[3]));
    json out = json::array();
    for (const auto& t : texts) {
      const std::string text = t.get<std::string>();
      if (mode == "--normalize") {
        out.push_back(tokenizer.normalize(text));
      } else {
        out.push_back(tokenizer.pre_tokenize(text));
      }
    }
    std::cout << dump(out) << "\n";
    return 0;
  }
  if (mode == "--bench" && (argc == 4 || argc == 5)) {
    const std::string text = read_file(argv[3]);
    const int repeats = argc == 5 ? std::max(1, std::stoi(argv[4])) : 3;
    double first = 0, best = 1e30;
    size_t tokens = 0;
    for (int r = 0; r < repeats; ++r) {
      const auto t = Clock::now();
      tokens = tokenizer.encode_with_offsets(text).ids.size();
      const double s = seconds_since(t);
      if (r == 0) first = s;
      best = std::min(best, s);
    }
    std::cout << dump({{"bytes", text.size()},
                       {"tokens", tokens},
                       {"load_s", load_s},
                       {"first_s", first},
                       {"best_s", best},
                       {"tokens_per_s", static_cast<double>(tokens) / best}})
              << "\n";
    return 0;
  }
  if (argc != 3) {
    std::cerr << "usage: tokenize_tool TOKENIZER_JSON (TEXT_FILE | --batch TEXTS_JSON | "
                 "--normalize TEXTS_JSON "
                 "| --pre-tokenize TEXTS_JSON | --bench TEXT_FILE [N])\n";
    return 2;
  }
  std::cout << dump(result(tokenizer, read_file(mode))) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
