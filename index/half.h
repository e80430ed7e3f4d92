// IEEE 754 binary16 ("half", float16) <-> float conversion, the storage type of dense.bin. Round to
// nearest, ties to even, as numpy's float16 and CUDA's __float2half_rn; overflow goes to infinity,
// NaN stays NaN. Header-only, no dependencies.
#pragma once

#include <bit>
#include <cstdint>

namespace s3::index {

inline uint16_t float_to_half(float value) {
  const uint32_t f = std::bit_cast<uint32_t>(value);
  const auto sign = static_cast<uint16_t>((f >> 16) & 0x8000u);
  const uint32_t abs = f & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) {  // infinity or NaN (a quiet NaN keeps its top mantissa bits)
    return static_cast<uint16_t>(sign | 0x7C00u |
                                 (abs > 0x7F800000u ? 0x200u | ((abs >> 13) & 0x3FFu) : 0u));
  }
  if (abs >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // rounds past 65504
  if (abs < 0x38800000u) {  // below the smallest normal half (2^-14): subnormal or zero
    if (abs < 0x33000000u) return sign;  // below half of the smallest subnormal (2^-25): zero
    const uint32_t mantissa = (abs & 0x7FFFFFu) | 0x800000u;
    // value / 2^-24 (the subnormal unit) = mantissa * 2^(exponent - 126): shift by 14..24.
    const int shift = 126 - static_cast<int>(abs >> 23);
    const uint32_t kept = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    const uint32_t rounded = kept + (rest > halfway || (rest == halfway && (kept & 1u)) ? 1u : 0u);
    return static_cast<uint16_t>(sign | rounded);
  }
  // Normal: rebias the exponent (127 -> 15) and round the 23-bit mantissa to 10 bits.
  const uint32_t rebased = abs - 0x38000000u;  // exponent - 112, in the float's bit layout
  const uint32_t kept = rebased >> 13;
  const uint32_t rest = rebased & 0x1FFFu;
  const uint32_t rounded = kept + (rest > 0x1000u || (rest == 0x1000u && (kept & 1u)) ? 1u : 0u);
  return static_cast<uint16_t>(sign | rounded);  // a carry into the exponent is the right result
}

inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  const uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0x1F) return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));
  if (exponent != 0)
    return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
  if (mantissa == 0) return std::bit_cast<float>(sign);
  // Subnormal half: value = mantissa * 2^-24, exact in float.
  const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
  return sign ? -magnitude : magnitude;
}

}  // namespace s3::index
