# Writes the build's provenance header (OUT) from VERSION and the source tree's commit. Run at every
# build by the s3_version_stamp target; configure_file leaves OUT untouched when nothing changed, so
# only a new commit (or a tree turning clean or dirty) relinks the binary.
#
# The commit: $S3ATTN_COMMIT when set (a copy of the tree without .git, as on a GPU machine), else
# `git rev-parse HEAD` in SOURCE_DIR plus "-dirty" when tracked files differ from it, else "unknown".
if(DEFINED ENV{S3ATTN_COMMIT} AND NOT "$ENV{S3ATTN_COMMIT}" STREQUAL "")
  set(S3ATTN_COMMIT "$ENV{S3ATTN_COMMIT}")
else()
  set(S3ATTN_COMMIT "unknown")
  find_package(Git QUIET)
  if(GIT_FOUND)
    execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse HEAD WORKING_DIRECTORY ${SOURCE_DIR}
                    OUTPUT_VARIABLE _head OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc ERROR_QUIET)
    if(_rc EQUAL 0)
      set(S3ATTN_COMMIT "${_head}")
      execute_process(COMMAND ${GIT_EXECUTABLE} status --porcelain --untracked-files=no
                      WORKING_DIRECTORY ${SOURCE_DIR} OUTPUT_VARIABLE _changes RESULT_VARIABLE _rc ERROR_QUIET)
      if(_rc EQUAL 0 AND NOT "${_changes}" STREQUAL "")
        string(APPEND S3ATTN_COMMIT "-dirty")
      endif()
    endif()
  endif()
endif()
set(S3ATTN_VERSION "${VERSION}")
configure_file(${SOURCE_DIR}/core/base/version_stamp.h.in ${OUT} @ONLY)
