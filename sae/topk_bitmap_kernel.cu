// Fused Top-K + feature bitmap (sae/topk_bitmap_kernel.h). One block per row:
//   1. the row's values become order-preserving unsigned keys in shared memory (one global read),
//      and every thread keeps the largest key it loaded;
//   2. fast path (k <= kThreads / 2): the k-th largest positive of the threads' maxima is a lower
//      bound T0 of the row's k-th largest positive value (those k maxima are k distinct entries
//      >= T0). The entries >= T0 (a few k for typical rows) are compacted into a short candidate
//      list, and the radix select below runs on that list instead of the whole row;
//   3. radix select, 8 bits per pass from the top, among positive keys only, finds the key T of the
//      k-th largest positive value and how many keys equal to T are still to take (E);
//   4. every key > T is selected, and the E lowest-id keys equal to T; each selected latent ORs its
//      token's bit into the bitmap.
// The full-row path (steps 3-4 over every key, with a block scan for the lowest ids among ties)
// runs when the fast path does not apply: k > kThreads / 2, or more candidates than the list
// holds. Keys equal to T that are only partly taken are ranked by id (the list is not in id
// order). When the row has at most k positive values, all of them are selected.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <cub/block/block_scan.cuh>

#include "sae/topk_bitmap_kernel.h"

namespace s3::sae::cuda_kernels {
namespace {

constexpr int kThreads = 256;
constexpr int kBins = 256;
constexpr int kCandidates = 512;  // fast-path list; a row with more candidates takes the full path
constexpr unsigned kFull = 0xffffffffu;
constexpr unsigned kNoDigit = 0x100u;      // never a histogram bin
constexpr unsigned kAllPositive = 0x200u;  // s_digit: at most `remaining` positives, take them all
constexpr int64_t kMaxDynamicShared = 192 * 1024;
constexpr int kDefaultShared = 48 * 1024;

// Sign-magnitude floats (IEEE float32, float16, bfloat16) to unsigned keys with the same order.
template <typename Bits>
__device__ __forceinline__ Bits order_key(Bits bits) {
  constexpr Bits kSign = Bits(Bits(1) << (sizeof(Bits) * 8 - 1));
  return (bits & kSign) ? Bits(~bits) : Bits(bits | kSign);
}

// Stores the row's keys in shared memory; returns the largest key this thread stored (0 if none).
template <typename Bits>
__device__ unsigned load_keys(const Bits* __restrict__ row, int latents, Bits* keys) {
  constexpr int kVec = 16 / sizeof(Bits);
  unsigned largest = 0;
  if ((reinterpret_cast<uintptr_t>(row) & 15) == 0 && latents % kVec == 0) {
    const uint4* row4 = reinterpret_cast<const uint4*>(row);
    uint4* keys4 = reinterpret_cast<uint4*>(keys);
    for (int v = threadIdx.x; v < latents / kVec; v += kThreads) {
      const uint4 q = row4[v];
      Bits lane[kVec];
      memcpy(lane, &q, sizeof q);
#pragma unroll
      for (int j = 0; j < kVec; ++j) {
        lane[j] = order_key(lane[j]);
        largest = max(largest, static_cast<unsigned>(lane[j]));
      }
      uint4 out;
      memcpy(&out, lane, sizeof out);
      keys4[v] = out;
    }
  } else {
    for (int i = threadIdx.x; i < latents; i += kThreads) {
      keys[i] = order_key(row[i]);
      largest = max(largest, static_cast<unsigned>(keys[i]));
    }
  }
  return largest;
}

// Block-shared state of one radix select.
struct SelectShared {
  unsigned hist[kBins];
  unsigned digit, remaining, equal;
};

// Result of radix_select: either every counted key is taken (`all`), or the key `threshold` of the
// k-th largest counted key, with `remaining` of the `equal` keys equal to it still to take.
struct Selection {
  bool all;
  unsigned threshold, remaining, equal;
};

// Radix select over keys[0, n) (shared memory), counting only keys > floor. Every thread of the
// block calls it and gets the same result.
template <typename Key, int kKeyBits>
__device__ Selection radix_select(const Key* keys, int n, unsigned k, unsigned floor,
                                  SelectShared& s) {
  const int tid = threadIdx.x;
  const int lane = tid & 31;
  unsigned prefix = 0, mask = 0, remaining = k;
  for (int shift = kKeyBits - 8; shift >= 0; shift -= 8) {
    for (int b = tid; b < kBins; b += kThreads)
      s.hist[b] = 0;
    __syncthreads();  // also orders the callers' key stores before the first reads
    for (int base = 0; base < n; base += kThreads) {
      const int i = base + tid;
      const unsigned key = i < n ? static_cast<unsigned>(keys[i]) : 0u;
      const bool counted = i < n && key > floor && (key & mask) == prefix;
      const unsigned digit = counted ? (key >> shift) & 0xFFu : kNoDigit;
      // Lanes with the same digit add once (values cluster in few exponent bins).
      const unsigned peers = __match_any_sync(kFull, digit);
      if (counted && lane == __ffs(peers) - 1) atomicAdd(&s.hist[digit], __popc(peers));
    }
    __syncthreads();
    if (tid < 32) {
      // Lane l owns bins 255 - 8l down to 248 - 8l: a scan over lanes walks the bins in
      // descending key order.
      unsigned local[8];
      unsigned sum = 0;
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        local[j] = s.hist[255 - 8 * lane - j];
        sum += local[j];
      }
      unsigned inclusive = sum;
#pragma unroll
      for (int offset = 1; offset < 32; offset <<= 1) {
        const unsigned v = __shfl_up_sync(kFull, inclusive, offset);
        if (lane >= offset) inclusive += v;
      }
      const unsigned total = __shfl_sync(kFull, inclusive, 31);
      const unsigned exclusive = inclusive - sum;
      if (shift == kKeyBits - 8 && total <= remaining) {
        if (lane == 0) s.digit = kAllPositive;
      } else if (exclusive < remaining && remaining <= inclusive) {
        unsigned acc = exclusive;
        for (int j = 0; j < 8; ++j) {
          if (acc + local[j] >= remaining) {
            s.digit = static_cast<unsigned>(255 - 8 * lane - j);
            s.remaining = remaining - acc;
            s.equal = local[j];
            break;
          }
          acc += local[j];
        }
      }
    }
    __syncthreads();
    if (s.digit == kAllPositive) {
      __syncthreads();  // every thread has read s.digit before a later select rewrites it
      return {true, 0, 0, 0};
    }
    prefix |= s.digit << shift;
    mask |= 0xFFu << shift;
    remaining = s.remaining;
    __syncthreads();  // every thread has read s.digit / s.remaining before warp 0 rewrites them
  }
  const unsigned equal = s.equal;
  __syncthreads();
  return {false, prefix, remaining, equal};
}

// Appends every key >= t0 of keys[0, latents) (shared memory) and its latent id to the candidate
// list (list order is arbitrary); *count ends as the number of such keys, which may exceed the
// list's capacity (those past it are not stored). Warps reserve their slots with one atomic.
template <typename Bits>
__device__ void compact_candidates(const Bits* keys, int latents, unsigned t0, Bits* candidate_key,
                                   unsigned* candidate_id, unsigned* count) {
  constexpr int kVec = 16 / sizeof(Bits);
  const int lane = threadIdx.x & 31;
  const bool vectors = latents % kVec == 0;  // the keys array itself is 16-byte aligned
  const int items = vectors ? latents / kVec : latents;
  const int width = vectors ? kVec : 1;
  for (int base = 0; base < items; base += kThreads) {  // the same trip count for every thread
    const int v = base + static_cast<int>(threadIdx.x);
    Bits lane_keys[kVec] = {};
    unsigned take = 0;  // bit j: key j of this item is a candidate
    if (v < items) {
      if (vectors) {
        const uint4 q = reinterpret_cast<const uint4*>(keys)[v];
        memcpy(lane_keys, &q, sizeof q);
      } else {
        lane_keys[0] = keys[v];
      }
#pragma unroll
      for (int j = 0; j < kVec; ++j)
        if (j < width && static_cast<unsigned>(lane_keys[j]) >= t0) take |= 1u << j;
    }
    const unsigned n_take = __popc(take);
    if (!__any_sync(kFull, n_take != 0)) continue;
    unsigned inclusive = n_take;
#pragma unroll
    for (int offset = 1; offset < 32; offset <<= 1) {
      const unsigned up = __shfl_up_sync(kFull, inclusive, offset);
      if (lane >= offset) inclusive += up;
    }
    unsigned first = 0;
    if (lane == 31) first = atomicAdd(count, inclusive);
    first = __shfl_sync(kFull, first, 31);
    unsigned slot = first + inclusive - n_take;
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      if ((take >> j) & 1u) {
        if (slot < kCandidates) {
          candidate_key[slot] = lane_keys[j];
          candidate_id[slot] = static_cast<unsigned>(v * width + j);
        }
        ++slot;
      }
    }
  }
}

template <typename Bits>
__global__ void __launch_bounds__(kThreads)
    topk_bitmap_kernel(const Bits* __restrict__ pre, int64_t ld, int latents, int k, int heads,
                       int64_t token_base, int64_t words, unsigned long long* __restrict__ bitmap,
                       unsigned long long* __restrict__ full_rows, bool candidates) {
  constexpr int kKeyBits = sizeof(Bits) * 8;
  constexpr unsigned kZero = 1u << (kKeyBits - 1);  // key of +0.0: active values have larger keys
  extern __shared__ __align__(16) unsigned char shared_keys[];
  Bits* keys = reinterpret_cast<Bits*>(shared_keys);
  __shared__ SelectShared select;
  __shared__ unsigned maxima[kThreads];
  __shared__ Bits candidate_key[kCandidates];
  __shared__ unsigned candidate_id[kCandidates];
  __shared__ unsigned s_count;
  using BlockScan = cub::BlockScan<unsigned, kThreads>;
  __shared__ typename BlockScan::TempStorage scan_storage;

  const int tid = threadIdx.x;
  const unsigned largest = load_keys(pre + static_cast<int64_t>(blockIdx.x) * ld, latents, keys);

  const int64_t token = token_base + blockIdx.x / heads;
  const unsigned long long bit = 1ull << (token & 63);
  unsigned long long* column = bitmap + token / 64;

  if (candidates && 2 * k <= kThreads) {
    maxima[tid] = largest;
    if (tid == 0) s_count = 0;
    // The lower bound T0 (radix_select's first barrier orders the stores above).
    const Selection bound = radix_select<unsigned, kKeyBits>(maxima, kThreads, k, kZero, select);
    const unsigned t0 = bound.all ? kZero + 1 : bound.threshold;
    compact_candidates(keys, latents, t0, candidate_key, candidate_id, &s_count);
    __syncthreads();
    const unsigned n = s_count;
    if (n <= kCandidates) {
      const Selection sel =
          radix_select<Bits, kKeyBits>(candidate_key, static_cast<int>(n), k, kZero, select);
      const unsigned threshold = sel.all ? kZero + 1 : sel.threshold;
      // Keys equal to T only partly taken: the lowest ids first, by each one's rank among them
      // (few keys, so counting beats sorting).
      const bool split_ties = !sel.all && sel.equal > sel.remaining;
      for (unsigned c = tid; c < n; c += kThreads) {
        const unsigned key = candidate_key[c];
        bool take = key >= threshold;
        if (split_ties && key == threshold) {
          const unsigned id = candidate_id[c];
          unsigned lower = 0;
          for (unsigned o = 0; o < n; ++o)
            lower += (candidate_key[o] == threshold && candidate_id[o] < id) ? 1u : 0u;
          take = lower < sel.remaining;
        }
        if (take) atomicOr(column + static_cast<int64_t>(candidate_id[c]) * words, bit);
      }
      return;
    }
  }
  if (full_rows != nullptr && tid == 0) atomicAdd(full_rows, 1ull);

  const Selection sel = radix_select<Bits, kKeyBits>(keys, latents, k, kZero, select);
  if (sel.all) {
    for (int i = tid; i < latents; i += kThreads)
      if (keys[i] > kZero) atomicOr(column + static_cast<int64_t>(i) * words, bit);
    return;
  }
  // sel.threshold is the exact key T of the k-th largest positive value (T > kZero); `remaining` of
  // the `equal` keys equal to T are taken, lowest latent ids first.
  const unsigned threshold = sel.threshold;
  if (sel.equal <= sel.remaining) {
    for (int i = tid; i < latents; i += kThreads)
      if (keys[i] >= threshold) atomicOr(column + static_cast<int64_t>(i) * words, bit);
    return;
  }
  unsigned taken = 0;
  for (int base = 0; base < latents; base += kThreads) {
    const int i = base + tid;
    const unsigned key = i < latents ? keys[i] : 0u;
    const unsigned equal = (i < latents && key == threshold) ? 1u : 0u;
    unsigned before = 0, tile = 0;
    BlockScan(scan_storage).ExclusiveSum(equal, before, tile);
    if (i < latents && (key > threshold || (equal && taken + before < sel.remaining)))
      atomicOr(column + static_cast<int64_t>(i) * words, bit);
    taken += tile;
    __syncthreads();  // scan_storage is reused by the next tile
  }
}

template <typename Bits>
std::string launch(const TopKBitmapArgs& a) {
  const size_t shared = static_cast<size_t>(a.latents) * sizeof(Bits);
  auto kernel = topk_bitmap_kernel<Bits>;
  if (shared > kDefaultShared) {
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               static_cast<int>(shared));
    if (e != cudaSuccess) return cudaGetErrorString(e);
  }
  kernel<<<static_cast<unsigned>(a.rows), kThreads, shared, static_cast<cudaStream_t>(a.stream)>>>(
      static_cast<const Bits*>(a.pre), a.ld, static_cast<int>(a.latents), static_cast<int>(a.k),
      static_cast<int>(a.heads), a.token_base, a.words,
      reinterpret_cast<unsigned long long*>(a.bitmap),
      reinterpret_cast<unsigned long long*>(a.full_rows), a.candidates);
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? std::string() : std::string(cudaGetErrorString(e));
}

}  // namespace

bool available() {
  return true;
}

int64_t max_latents(int value_bytes) {
  return kMaxDynamicShared / value_bytes;
}

std::string launch_topk_bitmap(const TopKBitmapArgs& a) {
  if (a.value_bytes != 2 && a.value_bytes != 4)
    return "pre-activations must be 2- or 4-byte floats";
  if (a.latents < 1 || a.latents > max_latents(a.value_bytes))
    return "unsupported number of latents";
  if (a.k < 1 || a.k > a.latents || a.heads < 1 || a.ld < a.latents || a.rows % a.heads != 0)
    return "inconsistent arguments";
  if (a.rows > 0x7fffffff) return "too many rows for one launch";
  if (a.rows == 0) return {};
  return a.value_bytes == 2 ? launch<uint16_t>(a) : launch<uint32_t>(a);
}

}  // namespace s3::sae::cuda_kernels
