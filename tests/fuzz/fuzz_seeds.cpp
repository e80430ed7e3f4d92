// Writes the seed corpus of every fuzz target (docs/fuzzing.md): OUT/<target>/seed-* files built
// with the project's own writers from the tests' fixtures (fuzz_fixtures.h), in each target's
// input format. With TOKENIZERS (a folder of <name>/tokenizer.json, e.g. $S3ATTN_DATA/tokenizers)
// the real tokenizers are added, cut down to a few hundred vocabulary entries. Every tokenizer
// seed is loaded once, so a seed that the loader refuses is caught here.
//
//   fuzz_seeds OUT [TOKENIZERS]
#include <cstdio>
#include <exception>
#include <string>

#include "core/tokenizer/tokenizer.h"
#include "index/manifest.h"
#include "tests/fuzz/fuzz_fixtures.h"

namespace {

using namespace s3::fuzz;

void seed(const fs::path& dir, const std::string& name, std::string_view bytes) {
  fs::create_directories(dir);
  write_bytes(dir / ("seed-" + name), bytes);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: fuzz_seeds OUT [TOKENIZERS]\n");
    return 2;
  }
  const fs::path out = argv[1];
  try {
    ScratchDir scratch;
    for (int v = 0; v < kFixtureIndexes; ++v) {
      const fs::path dir = scratch.path() / ("index-" + std::to_string(v));
      write_fixture_index(dir, v);
      size_t file = 0;
      for (const auto& [name, bytes] : index_files(dir)) {
        if (name == s3::index::kManifestFile) {
          // Resealed (bit 1) and as written.
          seed(out / "manifest", "index" + std::to_string(v),
               std::string(1, static_cast<char>(2 | v)) + bytes);
          seed(out / "manifest", "index" + std::to_string(v) + "-raw",
               std::string(1, static_cast<char>(v)) + bytes);
          continue;
        }
        std::string tag = name;
        for (char& c : tag)
          if (c == '/') c = '_';
        seed(out / "segment", "index" + std::to_string(v) + "-" + tag,
             std::string(1, static_cast<char>((file << 2) | static_cast<size_t>(v))) + bytes);
        ++file;
      }
    }
    const auto safetensors = fixture_safetensors();
    for (size_t i = 0; i < safetensors.size(); ++i)
      seed(out / "safetensors", std::to_string(i), safetensors[i]);
    const auto jsonl = fixture_jsonl();
    for (size_t i = 0; i < jsonl.size(); ++i)
      seed(out / "jsonl", std::to_string(i), std::string(1, static_cast<char>(i)) + jsonl[i]);
    std::vector<std::pair<std::string, std::string>> tokenizers;
    const auto small = fixture_tokenizers();
    for (size_t i = 0; i < small.size(); ++i)
      tokenizers.emplace_back("fixture" + std::to_string(i), small[i]);
    if (argc == 3) {
      for (const auto& e : fs::directory_iterator(argv[2])) {
        const fs::path file = e.path() / "tokenizer.json";
        if (!fs::is_regular_file(file)) continue;
        tokenizers.emplace_back(e.path().filename().string(),
                                shrink_tokenizer(read_bytes(file), 400));
      }
    }
    for (const auto& [name, text] : tokenizers) {
      (void)s3::Tokenizer::from_json(text, name);  // throws if the seed is refused
      seed(out / "tokenizer", name, text);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
