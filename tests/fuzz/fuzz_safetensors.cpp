// Fuzz target: the safetensors loader (sae/safetensors.*) through both entry points, open() of a
// file (what SAE and model weights go through) and from_bytes(), which must agree; every tensor's
// bytes are read.
//
// Input: the file's bytes.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/base/error.h"
#include "sae/safetensors.h"
#include "tests/fuzz/fuzz_fixtures.h"

namespace {

using namespace s3::fuzz;

const fs::path& file_path() {
  static ScratchDir scratch;
  static const fs::path path = scratch.path() / "layer_0.safetensors";
  return path;
}

// Reads every tensor and checks what the header promised; returns a digest of the bytes.
uint64_t walk(const s3::sae::SafetensorsFile& f) {
  uint64_t digest = 0;
  const std::string* previous = nullptr;
  for (const s3::sae::TensorInfo& t : f.tensors()) {
    fuzz_check(previous == nullptr || *previous < t.name, "tensors not sorted by name");
    previous = &t.name;
    fuzz_check(f.find(t.name) == &t && &f.at(t.name) == &t, "find() misses a listed tensor");
    fuzz_check(t.begin <= t.end, "tensor byte range reversed");
    const auto bytes = f.data(t);
    fuzz_check(bytes.size() == t.nbytes(), "data() size differs from the byte range");
    fuzz_check(t.numel() >= 0 &&
                   static_cast<uint64_t>(t.numel()) * s3::sae::dtype_size(t.dtype) == t.nbytes(),
               "byte range differs from shape x dtype size");
    for (std::byte b : bytes)
      digest = digest * 31 + static_cast<uint8_t>(b);
  }
  for (const auto& [key, value] : f.metadata())
    digest += key.size() + value.size();
  return digest;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  write_bytes(file_path(), std::string_view(reinterpret_cast<const char*>(data), size));
  bool opened = false;
  uint64_t digest = 0;
  size_t n_tensors = 0;
  try {
    const auto f = s3::sae::SafetensorsFile::open(file_path());
    opened = true;
    digest = walk(f);
    n_tensors = f.tensors().size();
  } catch (const s3::Error&) {
    // The documented refusal of a malformed file.
  }
  std::vector<std::byte> bytes(size);
  if (size > 0) std::memcpy(bytes.data(), data, size);
  try {
    const auto f = s3::sae::SafetensorsFile::from_bytes(std::move(bytes), "fuzz.safetensors");
    fuzz_check(opened, "from_bytes() accepts what open() refuses");
    fuzz_check(walk(f) == digest && f.tensors().size() == n_tensors,
               "from_bytes() and open() read different tensors");
  } catch (const s3::Error&) {
    fuzz_check(!opened, "open() accepts what from_bytes() refuses");
  }
  return 0;
}
