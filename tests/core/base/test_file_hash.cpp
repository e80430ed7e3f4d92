// core/base/file_hash.h: file hashes equal xxHash's one-shot hash of the same bytes (across the 1
// MiB block boundary too), and a file that is not a regular file is refused like every read.
#include "core/base/file_hash.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "core/base/error.h"

namespace fs = std::filesystem;

namespace {

class FileHash : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = (fs::temp_directory_path() / "s3-file-hash-XXXXXX").string();
    dir_ = ::mkdtemp(templ.data());
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path write(const std::string& content) const {
    const fs::path p = dir_ / "file.bin";
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  fs::path dir_;
};

std::string random_bytes(size_t n) {
  std::mt19937 rng(7);
  std::string s(n, '\0');
  for (char& c : s)
    c = static_cast<char>(rng() & 0xff);
  return s;
}

TEST_F(FileHash, EqualsTheOneShotHashOfTheBytes) {
  for (const size_t n :
       {size_t{0}, size_t{1}, size_t{1} << 20, (size_t{1} << 20) + 1, size_t{3} << 20}) {
    const std::string bytes = random_bytes(n);
    EXPECT_EQ(s3::xxh3_64_file(write(bytes), "test file"), XXH3_64bits(bytes.data(), bytes.size()))
        << n;
  }
}

TEST_F(FileHash, BlocksCoverTheFileInOrder) {
  const std::string bytes = random_bytes((size_t{5} << 19) + 17);  // 2.5 MiB + 17: three blocks
  std::string seen;
  int blocks = 0;
  s3::for_each_file_block(write(bytes), "test file", [&](const char* data, size_t size) {
    seen.append(data, size);
    ++blocks;
  });
  EXPECT_EQ(seen, bytes);
  EXPECT_EQ(blocks, 3);
}

TEST_F(FileHash, HexIsSixteenLowerCaseDigits) {
  EXPECT_EQ(s3::hex64(0), "0000000000000000");
  EXPECT_EQ(s3::hex64(0xABCDEF0123456789ULL), "abcdef0123456789");
}

TEST_F(FileHash, RefusesWhatIsNotARegularFile) {
  const fs::path fifo = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THROW(s3::xxh3_64_file(fifo, "test file"), s3::Error);
  EXPECT_THROW(s3::xxh3_64_file(dir_, "test file"), s3::Error);
  EXPECT_THROW(s3::xxh3_64_file(dir_ / "missing", "test file"), s3::Error);
}

}  // namespace
