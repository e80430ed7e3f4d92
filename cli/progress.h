// A progress bar on stderr: rate and ETA, redrawn at most 10 times a second, and quiet (one line
// per 10%) when stderr is not a terminal, so logs stay readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace s3::cli {

class ProgressBar {
 public:
  ProgressBar(std::string label, uint64_t total, std::string unit);
  // `extra` is appended to the line (e.g. "loss 0.12 fvu 0.08").
  void update(uint64_t done, const std::string& extra = "");
  void finish();  // ends the line (terminal) or does nothing
  double elapsed_s() const;

 private:
  std::string label_;
  std::string unit_;
  uint64_t total_;
  bool tty_;
  int last_decile_ = -1;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace s3::cli
