#include "convert/mx_quantize.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "util/half.h"

namespace mxgemma {
namespace {

// E2M1 code -> value; bit 3 is the sign, so codes 8..15 repeat 0..7 negated (8 is -0).
constexpr float kE2m1Values[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                   -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

// Rounds to fp16 and back: MLX's CPU ops on fp16 arrays compute each step in fp32 and store fp16.
float round_fp16(float x) { return fp16_to_float(float_to_fp16(x)); }

// float -> fp16 bits as MLX's CPU float16 type stores them: NaN becomes sign | 0x7d00, where
// numpy writes sign | 0x7e00.
uint16_t float_to_fp16_mlx(float x) {
  if (std::isnan(x)) return static_cast<uint16_t>((float_to_bits(x) >> 16 & 0x8000u) | 0x7d00u);
  return float_to_fp16(x);
}

// float -> int32 as x86's cvttss2si does it: truncation, and INT32_MIN for NaN, infinities and
// values out of range. MLX's astype(int32) compiles to that instruction on x86-64.
int32_t truncate_to_int32_x86(float x) {
  if (!(x > -2147483904.0f && x < 2147483648.0f)) return std::numeric_limits<int32_t>::min();
  return static_cast<int32_t>(x);
}

// MLX 0.32.4's CPU fallback (fp_quantize in mlx/ops.cpp) runs these array ops in fp16, except
// that ceil sees log2 before it is rounded to fp16 (amax 1 to 8 fp16 steps above 6 * 2^k gives
// e = k + 1 in MLX; the golden case just_above_powers_f16 pins it):
//   scale = max|w| / 6; e = scale == 0 ? 0 : clamp(int32(ceil(log2(scale))), -127, 127);
//   q = w / 2^e; code = argmin_i |q - LUT[i]|; byte = uint8(e + 127).
// Rounding the exponent up (MLX pull request 4353; earlier releases rounded to nearest) keeps
// amax / 2^e <= 6, so no element saturates. The clamp was inferred from MLX's output for groups
// holding inf or NaN (byte 0, all codes 0), which the golden test pins.
void quantize_mxfp4_group_cpu(const uint16_t* values, uint32_t* codes, uint8_t* scale_byte) {
  float values_f[kMxfp4GroupSize];
  float amax = 0.0f;
  bool saw_nan = false;
  for (int i = 0; i < kMxfp4GroupSize; ++i) {
    values_f[i] = fp16_to_float(values[i]);
    if (std::isnan(values_f[i])) saw_nan = true;
    amax = std::max(amax, std::fabs(values_f[i]));
  }
  // MLX's max reduction returns NaN when any element is NaN.
  if (saw_nan) amax = std::numeric_limits<float>::quiet_NaN();

  const float scale = round_fp16(amax / 6.0f);
  int32_t exponent = 0;
  if (scale != 0.0f) {
    const float log2_scale = std::log2(scale);
    exponent = std::clamp(truncate_to_int32_x86(std::ceil(log2_scale)), -127, 127);
  }
  *scale_byte = static_cast<uint8_t>(static_cast<uint32_t>(exponent) + 127u);

  // power(2, e) promotes e to fp16 first; 2^e underflows to 0 in fp16 for e < -24, and then
  // every q is inf or NaN, which argmin maps to code 0.
  const float exponent_f = round_fp16(static_cast<float>(exponent));
  const float power = round_fp16(std::exp2(exponent_f));

  for (int word = 0; word < kMxfp4GroupSize / 8; ++word) {
    uint32_t packed = 0;
    for (int k = 0; k < 8; ++k) {
      const float q = round_fp16(values_f[word * 8 + k] / power);
      // argmin keeps the first index on ties and never moves away from a NaN first entry.
      uint32_t best = 0;
      float best_distance = std::fabs(round_fp16(q - kE2m1Values[0]));
      for (uint32_t i = 1; i < 16; ++i) {
        const float distance = std::fabs(round_fp16(q - kE2m1Values[i]));
        if (distance < best_distance) {
          best_distance = distance;
          best = i;
        }
      }
      packed |= best << (4 * k);
    }
    codes[word] = packed;
  }
}

// The Metal kernel's E8M0 encoder (fp8_e8m0 in mlx/backend/metal/kernels/fp8.h).
uint8_t encode_e8m0_metal(float x) {
  if (!std::isfinite(x)) return 0xff;
  if (x < 0.0f) return 0x00;
  const float rounded = std::round(std::log2(x));  // metal::round: half away from zero
  // log2(0) = -inf; Metal's float -> int conversion saturates, and the clamp makes it -127.
  int n = rounded < -127.0f ? -127 : (rounded > 127.0f ? 127 : static_cast<int>(rounded));
  return static_cast<uint8_t>(n + 127);
}

// E8M0 byte -> float as the Metal kernel decodes it: byte 0 is 2^-127 and 255 is +inf.
float decode_e8m0_metal(uint8_t byte) {
  return bits_to_float(byte == 0 ? 0x00400000u : static_cast<uint32_t>(byte) << 23);
}

// fp4_e2m1's constructor (mlx/backend/metal/kernels/fp4.h): round to nearest, ties to even
// mantissa, saturating at 6; the sign bit follows signbit, so -0 and small negatives give code 8.
uint32_t encode_e2m1_metal(float x) {
  if (std::isnan(x)) return 0x7;
  const uint32_t sign = std::signbit(x) ? 0x8 : 0x0;
  x = std::fabs(x);
  uint32_t magnitude = 0;
  if (x > 5.0f) {
    magnitude = 7;
  } else if (x >= 3.5f) {
    magnitude = 6;
  } else if (x > 2.5f) {
    magnitude = 5;
  } else if (x >= 1.75f) {
    magnitude = 4;
  } else if (x > 1.25f) {
    magnitude = 3;
  } else if (x >= 0.75f) {
    magnitude = 2;
  } else if (x > 0.25f) {
    magnitude = 1;
  }
  return magnitude | sign;
}

// The Metal kernel (fp_quantize in mlx/backend/metal/kernels/fp_quantized.h, as of MLX commit
// 846d1762 of 2026-08-22) works in fp32: one SIMD group of 32 threads per group, amax by
// simd_max, the exponent rounded to nearest, q = w * (1 / scale).
void quantize_mxfp4_group_gpu(const uint16_t* values, uint32_t* codes, uint8_t* scale_byte) {
  float values_f[kMxfp4GroupSize];
  for (int i = 0; i < kMxfp4GroupSize; ++i) values_f[i] = fp16_to_float(values[i]);
  // NOTE: simd_max is taken to follow fmax: a NaN lane loses to a number, and an all-NaN group
  // gives NaN and so scale byte 0xff. This was not checked on a Mac.
  float amax = std::fabs(values_f[0]);
  for (int i = 1; i < kMxfp4GroupSize; ++i) amax = std::fmax(amax, std::fabs(values_f[i]));
  const uint8_t byte = encode_e8m0_metal(amax / 6.0f);
  *scale_byte = byte;

  const float scale = decode_e8m0_metal(byte);
  const float inverse_scale = scale == 0.0f ? 0.0f : 1.0f / scale;
  for (int word = 0; word < kMxfp4GroupSize / 8; ++word) {
    uint32_t packed = 0;
    for (int k = 0; k < 8; ++k) {
      packed |= encode_e2m1_metal(values_f[word * 8 + k] * inverse_scale) << (4 * k);
    }
    codes[word] = packed;
  }
}

// float -> uint64 as GCC compiles it on x86-64: values below 2^63, and NaN, go through
// cvttss2si, which returns 0x8000000000000000 for NaN. MLX's affine kernel casts its clamped
// codes this way, so a NaN weight contributes only bit 63, which the uint32 store drops.
uint64_t truncate_to_uint64_x86(float x) {
  if (std::isnan(x)) return 0x8000000000000000ull;
  return static_cast<uint64_t>(x);
}

}  // namespace

void quantize_mxfp4(const uint16_t* values, size_t count, MxRounding rounding, uint32_t* codes,
                    uint8_t* scales) {
  if (count % kMxfp4GroupSize != 0) {
    throw std::invalid_argument("quantize_mxfp4: " + std::to_string(count) +
                                " values are not a whole number of groups of 32");
  }
  const size_t num_groups = count / kMxfp4GroupSize;
  for (size_t group = 0; group < num_groups; ++group) {
    const uint16_t* group_values = values + group * kMxfp4GroupSize;
    uint32_t* group_codes = codes + group * (kMxfp4GroupSize / 8);
    if (rounding == MxRounding::gpu) {
      quantize_mxfp4_group_gpu(group_values, group_codes, scales + group);
    } else {
      quantize_mxfp4_group_cpu(group_values, group_codes, scales + group);
    }
  }
}

void quantize_affine(const uint16_t* values, size_t count, int bits, int group_size,
                     uint32_t* codes, uint16_t* scales, uint16_t* biases) {
  if (bits != 4 && bits != 8) {
    throw std::invalid_argument("quantize_affine: bits " + std::to_string(bits) +
                                " is not supported; use 4 or 8");
  }
  if (group_size != 32 && group_size != 64 && group_size != 128) {
    throw std::invalid_argument("quantize_affine: group size " + std::to_string(group_size) +
                                " is not supported; use 32, 64 or 128");
  }
  if (count % static_cast<size_t>(group_size) != 0) {
    throw std::invalid_argument("quantize_affine: " + std::to_string(count) +
                                " values are not a whole number of groups of " +
                                std::to_string(group_size));
  }

  // Follows fast::Quantize::eval_cpu (mlx/backend/cpu/quantized.cpp): fp32 arithmetic, std::max
  // and std::min (which skip a NaN that is not first), and scale and bias stored as fp16 after
  // the codes were computed with their fp32 values.
  const float n_bins = static_cast<float>((1 << bits) - 1);
  const float eps = 1e-7f;
  const int values_per_word = 32 / bits;
  const size_t num_groups = count / group_size;
  for (size_t group = 0; group < num_groups; ++group) {
    const uint16_t* w = values + group * group_size;
    float w_min = std::numeric_limits<float>::infinity();
    float w_max = -w_min;
    for (int j = 0; j < group_size; ++j) {
      const float value = fp16_to_float(w[j]);
      w_max = std::max(w_max, value);
      w_min = std::min(w_min, value);
    }
    // The bias is the group's edge value of larger magnitude, and the scale is chosen so that the
    // edge maps exactly onto a whole code: q0 = rint(edge / scale), scale = edge / q0.
    const bool min_is_edge = std::abs(w_min) > std::abs(w_max);
    float scale = std::max((w_max - w_min) / n_bins, eps);
    scale = min_is_edge ? scale : -scale;
    const float edge = min_is_edge ? w_min : w_max;
    const float q0 = std::rint(edge / scale);
    float bias = 0.0f;
    if (q0 != 0.0f) {
      scale = edge / q0;
      bias = edge;
    }

    uint32_t* group_codes = codes + group * (group_size / values_per_word);
    for (int word = 0; word < group_size / values_per_word; ++word) {
      uint64_t packed = 0;
      for (int k = 0; k < values_per_word; ++k) {
        float code = std::rint((fp16_to_float(w[word * values_per_word + k]) - bias) / scale);
        code = std::min(std::max(code, 0.0f), n_bins);
        packed |= truncate_to_uint64_x86(code) << (k * bits);
      }
      group_codes[word] = static_cast<uint32_t>(packed);
    }
    scales[group] = float_to_fp16_mlx(scale);
    biases[group] = float_to_fp16_mlx(bias);
  }
}

}  // namespace mxgemma
