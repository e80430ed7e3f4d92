#include <fstream>
#include <sstream>

#include "cli/command.h"
#include "core/error.h"

namespace s3::cli {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace s3::cli
