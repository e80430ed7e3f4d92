#include "cli/progress.h"

#include <unistd.h>

#include <cstdio>

namespace s3::cli {

namespace {

std::string human(double value) {
  char buf[32];
  if (value >= 1e6)
    std::snprintf(buf, sizeof buf, "%.2fM", value / 1e6);
  else if (value >= 1e3)
    std::snprintf(buf, sizeof buf, "%.1fK", value / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.1f", value);
  return buf;
}

std::string clock(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  return buf;
}

}  // namespace

ProgressBar::ProgressBar(std::string label, uint64_t total, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      tty_(::isatty(2) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

double ProgressBar::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressBar::update(uint64_t done, const std::string& extra) {
  const auto now = std::chrono::steady_clock::now();
  const double fraction = total_ ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
  const double elapsed = elapsed_s();
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
  const double eta = rate > 0 && total_ > done ? static_cast<double>(total_ - done) / rate : 0;
  const std::string stats = human(static_cast<double>(done)) + "/" +
                            human(static_cast<double>(total_)) + " " + unit_ + "  " + human(rate) +
                            " " + unit_ + "/s  ETA " + clock(eta) +
                            (extra.empty() ? "" : "  " + extra);
  if (!tty_) {
    const int decile = static_cast<int>(fraction * 10);
    if (decile != last_decile_) {
      last_decile_ = decile;
      std::fprintf(stderr, "%s %3d%%  %s\n", label_.c_str(), static_cast<int>(fraction * 100),
                   stats.c_str());
    }
    return;
  }
  if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  constexpr int kWidth = 28;
  const int filled = static_cast<int>(fraction * kWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(kWidth, '.');
  std::fprintf(stderr, "\r%s [%s] %3d%%  %s\033[K", label_.c_str(), bar.c_str(),
               static_cast<int>(fraction * 100), stats.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::finish() {
  if (tty_ && drawn_) std::fprintf(stderr, "\n");
  drawn_ = false;
}

}  // namespace s3::cli
