#include "core/base/file_hash.h"

#include <xxhash.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <vector>

#include "core/base/file_read.h"

namespace s3 {

void for_each_file_block(const std::filesystem::path& path, std::string_view what,
                         const std::function<void(const char* data, size_t size)>& consume) {
  std::ifstream in = open_regular_file(path, what);
  std::vector<char> buf(1 << 20);
  while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0)
    consume(buf.data(), static_cast<size_t>(in.gcount()));
}

uint64_t xxh3_64_file(const std::filesystem::path& path, std::string_view what) {
  const std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(),
                                                                       &XXH3_freeState);
  XXH3_64bits_reset(state.get());
  for_each_file_block(path, what, [&](const char* data, size_t size) {
    XXH3_64bits_update(state.get(), data, size);
  });
  return XXH3_64bits_digest(state.get());
}

std::string hex64(uint64_t hash) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(hash));
  return buf;
}

}  // namespace s3
