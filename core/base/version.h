// The binary's version and the commit it was built from, stamped at build time
// (cmake/version_stamp.cmake), for `--version`, run manifests and benchmark rows.
#pragma once

#include <string>
#include <string_view>

namespace s3 {

// CMakeLists.txt's project version, e.g. "0.1.0".
std::string_view version();
// The full commit hash, "<hash>-dirty" when tracked files differed from it, or "unknown" (a tree
// without git and without $S3ATTN_COMMIT at build time).
std::string_view commit();
// "s3attn 0.1.0 (commit 2f2528b1c0de...)": what `s3attn --version` prints.
std::string version_line();

}  // namespace s3
