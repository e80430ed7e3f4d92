#include "core/base/version.h"

#include "version_stamp.h"  // generated into the build tree

namespace s3 {

std::string_view version() {
  return S3ATTN_VERSION_STRING;
}

std::string_view commit() {
  return S3ATTN_COMMIT_STRING;
}

std::string version_line() {
  return "s3attn " + std::string(version()) + " (commit " + std::string(commit()) + ")";
}

}  // namespace s3
