// A minimal fork-join helper for commit-time work (transcoding, writing files). Threads are started
// per call: commits are rare and coarse, a persistent pool would buy nothing.
#pragma once

#include <cstddef>
#include <functional>

namespace s3::index {

// Number of threads to use when the caller asked for `requested` (0 = min(8, hardware threads):
// enough to write the lexical, document and per-layer posting files of a 4-layer segment at once).
unsigned resolve_threads(unsigned requested);

// Calls fn(lo, hi) on disjoint sub-ranges covering [0, n), from up to `threads` threads (the
// calling thread included). Rethrows the first exception after all threads have stopped.
void parallel_for_chunks(size_t n, unsigned threads, const std::function<void(size_t, size_t)>& fn);

// Calls fn(i) for i in [0, n), one task per index, from up to `threads` threads.
void parallel_for_each(size_t n, unsigned threads, const std::function<void(size_t)>& fn);

}  // namespace s3::index
