#include "core/base/fs_util.h"

#include <ftw.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/base/error.h"

namespace s3 {

namespace fs = std::filesystem;

namespace {
std::string os_error(int e) {
  return std::strerror(e);
}
}  // namespace

void fsync_path(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open " + path.string() + " to fsync it: " + os_error(errno));
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0 && e != EINVAL) throw Error("cannot fsync " + path.string() + ": " + os_error(e));
}

fs::path make_temp_dir(const fs::path& parent, std::string_view prefix) {
  std::string templ = (parent / (std::string(prefix) + "XXXXXX")).string();
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    throw Error("cannot create a temporary directory in " + parent.string() + ": " +
                os_error(errno));
  }
  return fs::path(buf.data());
}

void remove_stale_temp_dirs(const fs::path& parent, std::string_view prefix) noexcept {
  std::error_code ec;
  fs::directory_iterator it(parent, ec);
  if (ec) return;
  for (const auto& entry : it) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    size_t dash = name.find('-', prefix.size());
    if (dash == std::string::npos) dash = name.size();
    long pid = 0;
    try {
      pid = std::stol(name.substr(prefix.size(), dash - prefix.size()));
    } catch (...) {
      continue;
    }
    if (pid <= 0) continue;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
      remove_tree_quietly(entry.path());
  }
}

void rename_noreplace(const fs::path& from, const fs::path& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return;
  int e = errno;
  if (e == EINVAL || e == ENOSYS) {  // filesystem without renameat2 flags: check, then rename
    std::error_code ec;
    if (fs::exists(to, ec)) throw Error(to.string() + " already exists");
    if (::rename(from.c_str(), to.c_str()) == 0) return;
    e = errno;
  }
  if (e == EEXIST || e == ENOTEMPTY) throw Error(to.string() + " already exists");
  throw Error("cannot rename " + from.string() + " to " + to.string() + ": " + os_error(e));
}

bool rename_exchange(const fs::path& a, const fs::path& b) {
  if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) == 0) return true;
  int e = errno;
  if (e == EINVAL || e == ENOSYS) return false;
  throw Error("cannot swap " + a.string() + " and " + b.string() + ": " + os_error(e));
}

void rename_replace(const fs::path& from, const fs::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    throw Error("cannot rename " + from.string() + " to " + to.string() + ": " + os_error(errno));
  }
}

void remove_tree_quietly(const fs::path& path) noexcept {
  // nftw, not std::filesystem::remove_all: pip's libtorch.so exports its own copy of remove_all,
  // and in a binary linked with it the call binds there and crashes.
  auto remove_entry = [](const char* p, const struct stat*, int, struct FTW*) {
    ::remove(p);  // best effort: keep walking
    return 0;
  };
  ::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void write_file_atomic(const fs::path& path, std::string_view content, bool fsync) {
  const fs::path tmp = path.string() + ".tmp-" + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error("cannot create " + tmp.string() + ": " + os_error(errno));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error("cannot write " + tmp.string() + ": " + os_error(e));
    }
    done += static_cast<size_t>(n);
  }
  if ((fsync && ::fsync(fd) != 0) || ::close(fd) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw Error("cannot write " + tmp.string() + ": " + os_error(e));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw Error("cannot rename " + tmp.string() + " to " + path.string() + ": " + os_error(e));
  }
  if (fsync) fsync_path(path.parent_path().empty() ? fs::path(".") : path.parent_path());
}

DirectoryLock::DirectoryLock(const fs::path& dir) {
  const fs::path p = dir / ".lock";
  fd_ = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error("cannot open " + p.string() + ": " + os_error(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    ::close(fd_);
    fd_ = -1;
    if (e == EWOULDBLOCK) {
      throw Error("another process is writing to " + dir.string() + " (it holds " + p.string() +
                  "); wait for it to finish");
    }
    throw Error("cannot lock " + p.string() + ": " + os_error(e));
  }
}

DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace s3
