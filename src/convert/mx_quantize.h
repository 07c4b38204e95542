// MLX's quantizers reproduced bit for bit on fp16 input: MXFP4 by the Metal kernel's rule or by
// the CPU fallback's rule, and affine 4/8-bit by MLX 0.32.4's CPU kernel.
//
// Groups run along the flattened input, so a [rows, cols] matrix with cols a multiple of the group
// size gives the same result as MLX's per-row groups. Output layouts are MLX's: codes packed into
// little-endian uint32 words with element j of a word in bits 4j..4j+3 (8j..8j+7 for 8-bit), one
// E8M0 byte per MXFP4 group, and one fp16 scale and bias per affine group.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mxgemma {

inline constexpr int kMxfp4GroupSize = 32;

// Which MLX MXFP4 rounding to reproduce.
// - gpu: the Metal kernel as of MLX commit 846d1762 (2026-08-22), which made the published Gemma 4
//   MXFP4 bundles. The exponent is round(log2(amax / 6)) half away from zero in fp32, E2M1 ties
//   go to the even mantissa, and elements above 6 saturate.
// - cpu: MLX 0.32.4's CPU fallback, what `mx.quantize(w, mode="mxfp4")` of mlx[cpu] returns:
//   exponent ceil(log2(amax / 6)) in fp16 arithmetic (MLX pull request 4353 switched both
//   devices from nearest to up), E2M1 ties to the smaller magnitude.
// NOTE: MLX 0.32.4 on an Apple GPU rounds the exponent up as well; its kernel source was not
// available here, so no rule reproduces it.
enum class MxRounding { gpu, cpu };

// Quantizes `count` fp16 values (bit patterns), count a multiple of 32. Writes count / 8 words to
// `codes` and count / 32 E8M0 bytes to `scales`.
void quantize_mxfp4(const uint16_t* values, size_t count, MxRounding rounding, uint32_t* codes,
                    uint8_t* scales);

// Affine quantization, w ≈ scale * q + bias with q in [0, 2^bits - 1], as MLX's CPU kernel
// computes it in fp32 from fp16 input. bits is 4 or 8; group_size is 32, 64 or 128 and divides
// `count`. Writes count * bits / 32 words to `codes` and count / group_size fp16 bit patterns to
// `scales` and to `biases`. Throws std::invalid_argument for other bits or group sizes.
void quantize_affine(const uint16_t* values, size_t count, int bits, int group_size,
                     uint32_t* codes, uint16_t* scales, uint16_t* biases);

}  // namespace mxgemma
