// core/base/file_read.h: whole-file reads of regular files only, bounded, with one-line errors that
// name the file; FIFOs and devices are refused at once instead of blocking or reading forever.
#include "core/base/file_read.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/base/error.h"

namespace fs = std::filesystem;

namespace {

class TempDir {
 public:
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "s3-file-read-XXXXXX").string();
    path_ = ::mkdtemp(templ.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  fs::path write(const std::string& name, const std::string& content) const {
    std::ofstream(path_ / name, std::ios::binary) << content;
    return path_ / name;
  }

 private:
  fs::path path_;
};

// The message of the s3::FileError that `f` throws ("" when it throws none).
template <class F>
std::string file_error(F&& f) {
  try {
    f();
  } catch (const s3::FileError& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    return e.what();
  }
  return "";
}

TEST(FileRead, ReadsRegularFilesWithinTheLimit) {
  TempDir dir;
  const std::string content(100000, 'x');
  const fs::path file = dir.write("a.txt", content);
  EXPECT_EQ(s3::read_regular_file(file, 100000, "test file"), content);
  EXPECT_EQ(s3::read_regular_file(dir.write("empty", ""), 0, "test file"), "");
  EXPECT_EQ(s3::regular_file_size(file, "test file"), 100000u);
  std::ifstream in = s3::open_regular_file(file, "test file");
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line, content);
}

TEST(FileRead, RefusesFilesOverTheLimit) {
  TempDir dir;
  const fs::path file = dir.write("big.json", std::string(2049, '{'));
  const std::string what = file_error([&] { s3::read_regular_file(file, 2048, "manifest"); });
  EXPECT_NE(what.find(file.string()), std::string::npos) << what;
  EXPECT_NE(what.find("manifest is 2,049 bytes, larger than the limit of 2.0 KiB"),
            std::string::npos)
      << what;
  // A sparse file claims its size without costing a byte of disk: refused before any read.
  const fs::path sparse = dir.path() / "sparse";
  { std::ofstream(sparse, std::ios::binary).put('x'); }
  fs::resize_file(sparse, uint64_t{1} << 40);
  EXPECT_NE(file_error([&] {
              s3::read_regular_file(sparse, s3::kMiB, "manifest");
            }).find("1,099,511,627,776 bytes"),
            std::string::npos);
}

TEST(FileRead, RefusesWhatIsNotARegularFileAtOnce) {
  TempDir dir;
  const fs::path fifo = dir.path() / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_NE(file_error([&] {
              s3::read_regular_file(fifo, s3::kMiB, "manifest");
            }).find("named pipe (FIFO)"),
            std::string::npos);
  EXPECT_NE(
      file_error([&] { s3::open_regular_file(fifo, "input file"); }).find("not a regular file"),
      std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));  // nothing blocked
  EXPECT_NE(file_error([&] {
              s3::read_regular_file("/dev/zero", s3::kMiB, "manifest");
            }).find("character device"),
            std::string::npos);
  EXPECT_NE(file_error([&] {
              s3::read_regular_file(dir.path(), s3::kMiB, "manifest");
            }).find("a directory"),
            std::string::npos);
  // A symbolic link is followed to what it points at.
  fs::create_symlink("/dev/zero", dir.path() / "link");
  EXPECT_NE(file_error([&] {
              s3::read_regular_file(dir.path() / "link", s3::kMiB, "manifest");
            }).find("character device"),
            std::string::npos);
  fs::create_symlink("loop", dir.path() / "loop");
  EXPECT_NE(file_error([&] {
              s3::regular_file_size(dir.path() / "loop", "input file");
            }).find("symbolic links"),
            std::string::npos);
  EXPECT_NE(file_error([&] {
              s3::read_regular_file(dir.path() / "missing", 10, "model.json");
            }).find("No such file or directory"),
            std::string::npos);
}

TEST(FileRead, FormatsSizes) {
  EXPECT_EQ(s3::format_bytes(1), "1 byte");
  EXPECT_EQ(s3::format_bytes(1023), "1023 bytes");
  EXPECT_EQ(s3::format_bytes(64 * s3::kMiB), "64 MiB");
  EXPECT_EQ(s3::format_bytes(3 * s3::kGiB / 2), "1.5 GiB");
}

}  // namespace
