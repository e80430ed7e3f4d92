// sae/safetensors.h: round trips, layout guarantees, and every kind of corrupted header.
#include "sae/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/base/error.h"

namespace {

using s3::sae::Dtype;
using s3::sae::SafetensorsFile;
using s3::sae::SafetensorsWriter;

std::vector<std::byte> bytes_of(const std::string& s) {
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

// A raw file image: 8-byte length, header text, `data` bytes.
std::vector<std::byte> raw(const std::string& header, size_t data_bytes,
                           uint64_t len_override = 0) {
  std::vector<std::byte> out(8 + header.size() + data_bytes, std::byte{0});
  const uint64_t len = len_override ? len_override : header.size();
  std::memcpy(out.data(), &len, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}

template <typename T>
std::span<const std::byte> as_bytes(const std::vector<T>& v) {
  return std::as_bytes(std::span<const T>(v));
}

// Expects DataCorruption whose message names the file and contains `needle`.
void expect_corrupt(std::vector<std::byte> image, const std::string& needle) {
  try {
    SafetensorsFile::from_bytes(std::move(image), "bad.safetensors");
    FAIL() << "no error; expected one mentioning '" << needle << "'";
  } catch (const s3::DataCorruption& e) {
    const std::string msg = e.what();
    EXPECT_EQ(e.path(), "bad.safetensors");
    EXPECT_NE(msg.find("bad.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  }
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/s3sae_test_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

TEST(Safetensors, DtypeNamesAndSizes) {
  Dtype d;
  ASSERT_TRUE(s3::sae::parse_dtype("BF16", &d));
  EXPECT_EQ(d, Dtype::kBF16);
  EXPECT_EQ(s3::sae::dtype_size(Dtype::kBF16), 2u);
  EXPECT_EQ(s3::sae::dtype_name(Dtype::kI64), "I64");
  EXPECT_EQ(s3::sae::dtype_size(Dtype::kF64), 8u);
  EXPECT_FALSE(s3::sae::parse_dtype("F12", &d));
}

TEST(Safetensors, RoundTripInMemory) {
  const std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
  const std::vector<int64_t> b = {1, -2, int64_t{1} << 40};
  const std::vector<uint8_t> c = {1, 2, 3};  // odd size: must not misalign the others
  const std::vector<uint16_t> h = {0x3F80, 0xC000};
  SafetensorsWriter w;
  w.add("c", Dtype::kU8, {3}, as_bytes(c));
  w.add("a", Dtype::kF32, {2, 3}, as_bytes(a));
  w.add("h", Dtype::kBF16, {2}, as_bytes(h));
  w.add("b", Dtype::kI64, {3}, as_bytes(b));
  w.add("empty", Dtype::kF32, {0, 4}, {});
  w.add("scalar", Dtype::kF32, {}, as_bytes(std::vector<float>{42.0f}));
  w.set_metadata({{"format", "test"}, {"note", "x"}});
  const auto image = w.serialize();

  uint64_t header_len = 0;
  std::memcpy(&header_len, image.data(), 8);
  EXPECT_EQ((8 + header_len) % 8, 0u) << "data buffer must start 8-byte aligned";

  const auto f = SafetensorsFile::from_bytes(image, "mem");
  ASSERT_EQ(f.tensors().size(), 6u);
  EXPECT_EQ(f.tensors()[0].name, "a");  // sorted by name
  EXPECT_EQ(f.metadata().at("format"), "test");
  const auto& ta = f.at("a");
  EXPECT_EQ(ta.dtype, Dtype::kF32);
  EXPECT_EQ(ta.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(ta.numel(), 6);
  auto da = f.data(ta);
  ASSERT_EQ(da.size(), 24u);
  EXPECT_EQ(std::memcmp(da.data(), a.data(), 24), 0);
  auto db = f.data(f.at("b"));
  EXPECT_EQ(std::memcmp(db.data(), b.data(), 24), 0);
  EXPECT_EQ(f.at("empty").numel(), 0);
  EXPECT_EQ(f.at("scalar").numel(), 1);
  EXPECT_EQ(f.find("nope"), nullptr);
  EXPECT_THROW(f.at("nope"), s3::DataCorruption);
  // Every tensor starts at a multiple of its element size.
  for (const auto& t : f.tensors()) {
    EXPECT_EQ((8 + header_len + t.begin) % s3::sae::dtype_size(t.dtype), 0u) << t.name;
  }
}

TEST(Safetensors, WriterRejectsBadInput) {
  SafetensorsWriter w;
  const std::vector<float> a = {1, 2};
  EXPECT_THROW(w.add("a", Dtype::kF32, {3}, as_bytes(a)), s3::Error);
  w.add("a", Dtype::kF32, {2}, as_bytes(a));
  EXPECT_THROW(w.add("a", Dtype::kF32, {2}, as_bytes(a)), s3::Error);
  EXPECT_THROW(w.add("__metadata__", Dtype::kF32, {2}, as_bytes(a)), s3::Error);
  EXPECT_THROW(w.add("", Dtype::kF32, {2}, as_bytes(a)), s3::Error);
}

TEST(Safetensors, FileRoundTripAndAtomicWrite) {
  TempDir dir;
  const auto path = dir.path() / "x.safetensors";
  SafetensorsWriter w;
  const std::vector<int32_t> v = {5, 6, 7, 8};
  w.add("v", Dtype::kI32, {2, 2}, as_bytes(v));
  w.write(path);
  // Nothing but the published file is left (no temporary beside it).
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()),
                          std::filesystem::directory_iterator{}),
            1);
  const auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f.path(), path.string());
  auto d = f.data(f.at("v"));
  EXPECT_EQ(std::memcmp(d.data(), v.data(), 16), 0);
}

TEST(Safetensors, MissingFileIsAnError) {
  try {
    SafetensorsFile::open("/nonexistent/dir/w.safetensors");
    FAIL();
  } catch (const s3::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/w.safetensors"), std::string::npos);
  }
}

TEST(Safetensors, TruncatedFileOnDisk) {
  TempDir dir;
  SafetensorsWriter w;
  const std::vector<float> v(100, 1.0f);
  w.add("v", Dtype::kF32, {100}, as_bytes(v));
  auto image = w.serialize();
  image.resize(image.size() - 10);
  const auto path = dir.path() / "t.safetensors";
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(image.data()),
             static_cast<std::streamsize>(image.size()));
  try {
    SafetensorsFile::open(path);
    FAIL();
  } catch (const s3::DataCorruption& e) {
    EXPECT_EQ(e.path(), path.string());
    EXPECT_NE(std::string(e.what()).find("run past the data buffer"), std::string::npos)
        << e.what();
  }
}

TEST(Safetensors, CorruptedHeaders) {
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  EXPECT_NO_THROW(SafetensorsFile::from_bytes(raw(ok, 8), "ok"));

  expect_corrupt(bytes_of("abc"), "too short");
  expect_corrupt(raw(ok, 8, /*len_override=*/1000), "runs past the end of the file");
  expect_corrupt(raw(ok, 8, /*len_override=*/~uint64_t{0} >> 1), "runs past the end");
  expect_corrupt(raw(R"({"a": {"dtype": "F32", )", 8), "not valid JSON");
  expect_corrupt(raw("[1,2,3]", 0), "not a JSON object");
  expect_corrupt(raw(R"({"a": 5})", 0), "tensor 'a' is not a JSON object");
  expect_corrupt(raw(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", 8), "no string 'dtype'");
  expect_corrupt(raw(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", 8), "no 'shape'");
  expect_corrupt(raw(R"({"a":{"dtype":"F32","shape":[2]}})", 8), "no 'data_offsets'");
  expect_corrupt(raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8),
                 "no 'data_offsets'");
  expect_corrupt(raw(R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", 8),
                 "unknown dtype 'Q4'");
  expect_corrupt(raw(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
                 "not a size");
  expect_corrupt(raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[-1,8]}})", 8),
                 "not a size");
  expect_corrupt(
      raw(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8),
      "impossible shape");
  // Offsets out of range, reversed, size mismatch.
  expect_corrupt(raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4),
                 "run past the data buffer");
  expect_corrupt(raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8), "reversed");
  expect_corrupt(raw(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
                 "holds 8 bytes but F32 [3] needs 12");
  // Overlap, hole, trailing bytes.
  expect_corrupt(raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                     12),
                 "overlap");
  expect_corrupt(raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                     R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                     12),
                 "belong to no tensor");
  expect_corrupt(raw(ok, 12), "trailing bytes");
  // Metadata must be string -> string.
  expect_corrupt(raw(R"({"__metadata__":{"n":5}})", 0), "is not a string");
  expect_corrupt(raw(R"({"__metadata__":[1]})", 0), "__metadata__ is not a JSON object");
}

TEST(Safetensors, EmptyFileAndEmptyHeader) {
  EXPECT_NO_THROW(SafetensorsFile::from_bytes(raw("{}", 0), "e"));
  EXPECT_EQ(SafetensorsFile::from_bytes(raw("{}  ", 0), "e").tensors().size(), 0u);
  expect_corrupt({}, "too short");
}

}  // namespace
