// Damaged indexes are refused with DataCorruption naming the file; killed writers leave the
// previous index intact (fork + SIGKILL at every commit stage and at random moments).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <thread>
#include <utility>
#include <vector>

#include "core/base/error.h"
#include "index/checksum.h"
#include "index/index_reader.h"
#include "index/index_writer.h"
#include "index/manifest.h"
#include "reference_check.h"
#include "test_util.h"

namespace s3::index {
namespace {

using namespace s3::index::test;
using nlohmann::json;

Reference build_into(const fs::path& out, WriteMode mode, uint64_t seed, int n_docs,
                     uint32_t d_latent = 300, bool fsync = false) {
  std::mt19937_64 rng(seed);
  IndexWriterOptions o = small_options(out, mode);
  o.d_latent = d_latent;
  o.fsync = fsync;
  Reference ref(o.layers.size(), o.d_latent);
  IndexWriter w(o);
  for (int i = 0; i < n_docs; ++i) {
    feed_doc(w, ref, random_doc(rng, "doc-" + std::to_string(seed) + "-" + std::to_string(i), 20),
             rng, o.d_latent, 10);
  }
  w.commit();
  return ref;
}

// Copies the index, damages one file of the copy with `damage`, and expects open() to throw
// DataCorruption whose path ends with that file.
template <class Damage>
void expect_refused(const fs::path& good, const fs::path& scratch, const std::string& rel,
                    Damage damage, const std::string& needle = "") {
  fs::remove_all(scratch);
  fs::copy(good, scratch, fs::copy_options::recursive);
  damage(scratch / rel);
  try {
    IndexReader::open(scratch);
    FAIL() << "damaged " << rel << " was accepted";
  } catch (const DataCorruption& e) {
    EXPECT_EQ(fs::path(e.path()).filename(), fs::path(rel).filename()) << e.what();
    EXPECT_NE(std::string(e.what()).find(fs::path(rel).filename().string()), std::string::npos);
    if (!needle.empty()) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
}

std::vector<std::string> index_files(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& [rel, bytes] : snapshot(dir))
    out.push_back(rel);
  return out;
}

TEST(IndexCorruption, FlippedByteInAnyFileIsRefused) {
  TempDir tmp;
  build_into(tmp / "idx", WriteMode::kCreate, 1, 3);
  for (const std::string& rel : index_files(tmp / "idx")) {
    for (double where : {0.0, 0.3, 0.5, 0.99}) {
      expect_refused(tmp / "idx", tmp / "bad", rel, [&](const fs::path& p) {
        std::string s = read_file(p);
        const size_t i = std::min(s.size() - 1, static_cast<size_t>(where * s.size()));
        s[i] = static_cast<char>(s[i] ^ 0x5A);
        write_file(p, s);
      });
    }
  }
}

TEST(IndexCorruption, TruncatedFilesAreRefused) {
  TempDir tmp;
  build_into(tmp / "idx", WriteMode::kCreate, 2, 3);
  for (const std::string& rel : index_files(tmp / "idx")) {
    for (size_t keep_num : {0, 1, 2}) {
      expect_refused(tmp / "idx", tmp / "bad", rel, [&](const fs::path& p) {
        const auto size = fs::file_size(p);
        // The manifest's last byte is a newline, harmless to lose: cut two bytes there.
        const uintmax_t cut = p.filename() == "manifest.json" ? 2 : 1;
        fs::resize_file(p, keep_num == 0 ? 0 : keep_num == 1 ? size / 2 : size - cut);
      });
    }
  }
  // A file with extra bytes is refused too.
  expect_refused(tmp / "idx", tmp / "bad", "seg-000000/text.bin",
                 [](const fs::path& p) { write_file(p, read_file(p) + "x"); });
}

TEST(IndexCorruption, MissingFilesAreRefused) {
  TempDir tmp;
  build_into(tmp / "idx", WriteMode::kCreate, 3, 2);
  for (const std::string& rel : index_files(tmp / "idx")) {
    expect_refused(
        tmp / "idx", tmp / "bad", rel, [](const fs::path& p) { fs::remove(p); }, "missing");
  }
  // A missing segment directory names the first file it should hold.
  fs::remove_all(tmp / "bad");
  fs::copy(tmp / "idx", tmp / "bad", fs::copy_options::recursive);
  fs::remove_all(tmp / "bad" / "seg-000000");
  EXPECT_THROW(IndexReader::open(tmp / "bad"), DataCorruption);
  // No directory at all is a plain error.
  EXPECT_THROW(IndexReader::open(tmp / "nowhere"), Error);
}

// Rewrites manifest.json through `edit` and fixes its checksum, so only the edit is wrong.
void edit_manifest(const fs::path& dir, const std::function<void(json&)>& edit) {
  json j = json::parse(read_file(dir / "manifest.json"));
  edit(j);
  j.erase("checksum");
  j["checksum"] = checksum_hex(xxh3_64(j.dump()));
  write_file(dir / "manifest.json", j.dump(2));
}

TEST(IndexCorruption, WrongFormatVersionIsRefused) {
  TempDir tmp;
  build_into(tmp / "idx", WriteMode::kCreate, 4, 2);
  // Newer manifest version.
  expect_refused(
      tmp / "idx", tmp / "bad", "manifest.json",
      [](const fs::path& p) {
        edit_manifest(p.parent_path(), [](json& j) { j["format_version"] = 2; });
      },
      "version 2");
  // A file whose header says another version (checked before its checksum).
  expect_refused(
      tmp / "idx", tmp / "bad", "seg-000000/tokens.bin",
      [](const fs::path& p) {
        std::string s = read_file(p);
        s[8] = 7;  // u32 version at offset 8
        write_file(p, s);
      },
      "version 7");
  // Unknown codec id.
  expect_refused(
      tmp / "idx", tmp / "bad", "manifest.json",
      [](const fs::path& p) {
        edit_manifest(p.parent_path(), [](json& j) { j["codec"]["id"] = 99; });
      },
      "codec");
  // A manifest edited without fixing its checksum.
  expect_refused(
      tmp / "idx", tmp / "bad", "manifest.json",
      [](const fs::path& p) {
        json j = json::parse(read_file(p));
        j["d_latent"] = 301;
        write_file(p, j.dump(2));
      },
      "checksum");
  // A manifest whose recorded file checksum disagrees with the file's footer.
  expect_refused(tmp / "idx", tmp / "bad", "seg-000000/docs.bin", [](const fs::path& p) {
    edit_manifest(p.parent_path().parent_path(), [](json& j) {
      j["segments"][0]["files"]["docs.bin"]["xxh3_64"] = "0123456789abcdef";
    });
  });
  // Not JSON at all.
  expect_refused(tmp / "idx", tmp / "bad", "manifest.json",
                 [](const fs::path& p) { write_file(p, "{\"format\": \"s3attn-in"); });
}

// Manifests whose checksum is right but whose numbers are not: nlohmann would read 2^40 documents
// as 0 and 3.5 as 3; a segment listed twice would be read twice.
TEST(IndexCorruption, ManifestNumbersMustFit) {
  TempDir tmp;
  build_into(tmp / "idx", WriteMode::kCreate, 6, 2);
  const std::vector<std::pair<std::function<void(json&)>, std::string>> edits = {
      {[](json& j) { j["segments"][0]["n_docs"] = uint64_t{1} << 40; },
       "'n_docs' is not an integer in [0, 4294967295]"},
      {[](json& j) { j["segments"][0]["n_docs"] = -1; }, "'n_docs'"},
      {[](json& j) { j["segments"][0]["n_tokens"] = 3.5; }, "'n_tokens' is not an integer"},
      {[](json& j) { j["segments"][0]["n_passages"] = true; }, "'n_passages' is not an integer"},
      {[](json& j) { j["segments"][0]["token_base"] = "0"; }, "'token_base' is not an integer"},
      {[](json& j) { j["d_latent"] = 300.0; }, "'d_latent' is not an integer"},
      {[](json& j) {
         j["layers"] = json::array({0, 1.5});
       },
       "'layers' is not a list of integers"},
      {[](json& j) {
         j["layers"] = json::array({3, 3});
       },
       "listed twice"},
      {[](json& j) { j["segments"][0]["postings"][0] = -5; }, "'postings'"},
      {[](json& j) { j["segments"][0]["files"]["docs.bin"]["bytes"] = 1e3; },
       "'bytes' is not an integer"},
      {[](json& j) { j["segments"][0]["dir"] = "."; }, "not a plain name"},
      {[](json& j) {
         json second = j["segments"][0];  // the same directory again, bases following the first
         second["doc_base"] = j["segments"][0]["n_docs"];
         second["token_base"] = j["segments"][0]["n_tokens"];
         second["passage_base"] = j["segments"][0]["n_passages"];
         j["segments"].push_back(second);
       },
       "seg-000000 is listed twice"},
  };
  for (const auto& [edit, needle] : edits) {
    expect_refused(
        tmp / "idx", tmp / "bad", "manifest.json",
        [&](const fs::path& p) { edit_manifest(p.parent_path(), edit); }, needle);
  }
}

// Index files that are not regular files are refused at once (a FIFO would block open(2), a device
// would be read forever), and a manifest too large to be one is refused before it is read.
TEST(IndexCorruption, NonRegularAndOversizedFilesAreRefused) {
  TempDir tmp;
  build_into(tmp / "idx", WriteMode::kCreate, 7, 2);
  const auto fifo = [](const fs::path& p) {
    fs::remove(p);
    ASSERT_EQ(::mkfifo(p.c_str(), 0600), 0);
  };
  const auto t0 = std::chrono::steady_clock::now();
  expect_refused(tmp / "idx", tmp / "bad", "manifest.json", fifo, "named pipe");
  expect_refused(tmp / "idx", tmp / "bad", "seg-000000/docs.bin", fifo, "not a regular file");
  expect_refused(tmp / "idx", tmp / "bad", "seg-000000/postings-l000.bin", fifo,
                 "not a regular file");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
  expect_refused(
      tmp / "idx", tmp / "bad", "manifest.json",
      [](const fs::path& p) {
        fs::remove(p);
        fs::create_symlink("/dev/zero", p);
      },
      "character device");
  expect_refused(
      tmp / "idx", tmp / "bad", "manifest.json",
      [](const fs::path& p) { fs::resize_file(p, kMaxManifestBytes + 1); },
      "larger than the limit of 64 MiB");
}

TEST(IndexCorruption, UncheckedOpenStillValidatesStructure) {
  TempDir tmp;
  Reference ref = build_into(tmp / "idx", WriteMode::kCreate, 5, 2);
  IndexReader r = IndexReader::open(tmp / "idx", ReaderOptions{.verify_checksums = false});
  expect_matches_reference(r, ref);
}

// ---- Crash safety
// ---------------------------------------------------------------------------------

// Which complete index `dir` holds: the documents' names identify the build.
std::string identify(const fs::path& dir) {
  IndexReader r = IndexReader::open(dir);  // throws if broken
  std::string names;
  for (uint32_t d = 0; d < r.n_documents(); ++d)
    names += std::string(r.document(d).name) + ";";
  return names;
}

// Runs `child` in a forked process that reports (by a byte on a pipe) when its commit begins, and
// SIGKILLs it `delay` after that (or lets it finish / die on its own). Returns when it is gone.
void run_and_kill(const std::function<void(int notify_fd)>& child, std::chrono::microseconds delay,
                  bool kill_it) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    try {
      child(fds[1]);
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  char c;
  const ssize_t n = ::read(fds[0], &c, 1);  // commit began (or the child ended: n == 0)
  ::close(fds[0]);
  if (n == 1 && kill_it) {
    std::this_thread::sleep_for(delay);
    ::kill(pid, SIGKILL);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
}

TEST(IndexCrashSafety, KilledAtEveryStageLeavesAnOpenableIndex) {
  TempDir tmp;
  const fs::path out = tmp / "idx";
  build_into(out, WriteMode::kCreate, 100, 3);
  const std::string old_id = identify(out);
  const auto old_files = snapshot(out);
  // Overwrite, killed at each stage: before the swap the old index must be there, after it the new.
  for (const std::string stage : {"begin", "staged", "exchanged", "published"}) {
    run_and_kill(
        [&](int fd) {
          std::mt19937_64 rng(200);
          IndexWriterOptions o = small_options(out, WriteMode::kOverwrite);
          o.fsync = true;
          o.commit_hook = [&](std::string_view s) {
            if (s == "begin") (void)!::write(fd, "b", 1);
            if (s == stage) ::raise(SIGKILL);
          };
          Reference ref(o.layers.size(), o.d_latent);
          IndexWriter w(o);
          for (int i = 0; i < 3; ++i)
            feed_doc(w, ref, random_doc(rng, "new-" + std::to_string(i), 20), rng, o.d_latent, 10);
          w.commit();
        },
        {}, false);
    const std::string now = identify(out);
    if (stage == "begin" || stage == "staged") {
      EXPECT_EQ(now, old_id) << stage;
      EXPECT_EQ(snapshot(out), old_files) << stage;
    } else {
      EXPECT_NE(now, old_id) << stage;
      EXPECT_EQ(now, "new-0;new-1;new-2;") << stage;
      build_into(out, WriteMode::kOverwrite, 100, 3);  // restore the old one for the next stage
      ASSERT_EQ(identify(out), old_id);
    }
  }
  // The leftovers of the killed writers are removed by the next commit (their pids are gone).
  build_into(out, WriteMode::kOverwrite, 100, 3);
  EXPECT_EQ(entries_containing(tmp.path(), "idx"), std::vector<std::string>{"idx"});

  // Append, killed at each stage: before the manifest is replaced the old index is unchanged.
  for (const std::string stage : {"begin", "staged", "segment-published", "published"}) {
    run_and_kill(
        [&](int fd) {
          std::mt19937_64 rng(300);
          IndexWriterOptions o = small_options(out, WriteMode::kAppend);
          o.fsync = true;
          o.commit_hook = [&](std::string_view s) {
            if (s == "begin") (void)!::write(fd, "b", 1);
            if (s == stage) ::raise(SIGKILL);
          };
          IndexReader r = IndexReader::open(out);
          Reference ref(o.layers.size(), o.d_latent);
          ref.n_tokens = r.n_tokens();
          IndexWriter w(o);
          feed_doc(w, ref, random_doc(rng, "appended", 20), rng, o.d_latent, 10);
          w.commit();
        },
        {}, false);
    const std::string now = identify(out);
    if (stage == "published") {
      EXPECT_EQ(now, old_id + "appended;");
      build_into(out, WriteMode::kOverwrite, 100, 3);
    } else {
      EXPECT_EQ(now, old_id) << stage;
    }
  }
  // A later append cleans up orphan segments and staging directories.
  build_into(out, WriteMode::kOverwrite, 100, 3);
  run_and_kill(
      [&](int fd) {
        IndexWriterOptions o = small_options(out, WriteMode::kAppend);
        o.commit_hook = [&](std::string_view s) {
          if (s == "begin") (void)!::write(fd, "b", 1);
          if (s == "segment-published") ::raise(SIGKILL);
        };
        std::mt19937_64 rng(1);
        Reference ref(o.layers.size(), o.d_latent);
        IndexWriter w(o);
        feed_doc(w, ref, random_doc(rng, "orphan", 5), rng, o.d_latent, 5);
        w.commit();
      },
      {}, false);
  EXPECT_TRUE(fs::exists(out / "seg-000001"));  // orphan: not in the manifest
  EXPECT_EQ(identify(out), old_id);
  std::mt19937_64 rng(9);
  IndexWriterOptions o = small_options(out, WriteMode::kAppend);
  Reference ref(o.layers.size(), o.d_latent);
  {
    IndexWriter w(o);
    feed_doc(w, ref, random_doc(rng, "later", 5), rng, o.d_latent, 5);
    w.commit();
  }
  EXPECT_EQ(identify(out), old_id + "later;");
  EXPECT_TRUE(entries_containing(out, ".tmp").empty());
  EXPECT_EQ(IndexReader::open(out).segments()[1].dir, "seg-000001");
}

TEST(IndexCrashSafety, KilledAtRandomMomentsDuringOverwrite) {
  TempDir tmp;
  const fs::path out = tmp / "idx";
  // A larger build so that commit takes a while (d_latent 4096, dense features, fsync on).
  build_into(out, WriteMode::kCreate, 7, 4, 4096, true);
  const std::string old_id = identify(out);
  const auto old_files = snapshot(out);
  auto new_build = [](const fs::path& dir, const std::function<void(std::string_view)>& hook) {
    std::mt19937_64 r2(500);
    IndexWriterOptions o = small_options(dir, WriteMode::kOverwrite);
    o.d_latent = 4096;
    o.fsync = true;
    o.commit_hook = hook;
    Reference ref(o.layers.size(), o.d_latent);
    IndexWriter w(o);
    for (int i = 0; i < 4; ++i) {
      feed_doc(w, ref, random_doc(r2, "new-" + std::to_string(i), 60), r2, o.d_latent, 200);
    }
    return w.commit().seconds;
  };
  // Kills come at uniform delays in [0, span] after the commit begins; the span adapts (grows after
  // an old index survived, shrinks after the new one got published) so that the kills cluster
  // around the moment of publication, whatever the speed of this machine.
  const double commit_s = new_build(tmp / "timing", nullptr);
  double span_us = commit_s * 2e6 + 100;
  std::mt19937_64 rng(99);
  int saw_old = 0, saw_new = 0;
  for (int trial = 0; trial < 24; ++trial) {
    const auto delay = std::chrono::microseconds(rng() % (static_cast<uint64_t>(span_us) + 1));
    run_and_kill(
        [&](int fd) {
          new_build(out, [&](std::string_view s) {
            if (s == "begin") (void)!::write(fd, "b", 1);
          });
        },
        delay, true);
    const std::string now = identify(out);  // must open: old or new, never broken
    if (now == old_id) {
      ++saw_old;
      span_us *= 1.5;
      EXPECT_EQ(snapshot(out), old_files);
    } else {
      ASSERT_EQ(now, "new-0;new-1;new-2;new-3;");
      ++saw_new;
      span_us *= 0.7;
      build_into(out, WriteMode::kOverwrite, 7, 4, 4096, true);
      ASSERT_EQ(identify(out), old_id);
    }
  }
  std::cerr << "[ random kills ] commit takes " << commit_s * 1e3 << " ms; old index kept "
            << saw_old << "x, new index published " << saw_new << "x\n";
}

}  // namespace
}  // namespace s3::index
