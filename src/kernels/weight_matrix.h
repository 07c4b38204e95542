// A weight matrix [rows = out, cols = in] as stored in a bundle, dense or quantized.
#pragma once

#include <cstdint>

namespace mxgemma {

enum class WeightFormat {
  f32,
  f16,
  bf16,
  // MLX mxfp4: E2M1 codes, 8 per little-endian uint32 (element j at bits 4*(j%8)), one E8M0
  // scale byte per 32 inputs; value = e2m1[code] * 2^(byte - 127).
  mxfp4,
  // MLX affine: `bits`-wide unsigned codes packed LSB-first in uint32, per group of
  // `group_size` inputs a 16-bit scale and bias; value = scale * code + bias.
  affine,
};

enum class ScaleType { f16, bf16, f32 };

struct WeightMatrix {
  WeightFormat format = WeightFormat::f32;
  int64_t rows = 0;
  int64_t cols = 0;
  // Dense elements [rows, cols], or packed codes [rows, cols * bits / 32] as uint32.
  const void* data = nullptr;
  int bits = 16;
  int group_size = 0;
  // mxfp4: [rows, cols / 32] E8M0 bytes.
  const uint8_t* e8m0_scales = nullptr;
  // affine: [rows, cols / group_size] each, of `affine_scale_type`.
  const void* affine_scales = nullptr;
  const void* affine_biases = nullptr;
  ScaleType affine_scale_type = ScaleType::f16;

  bool quantized() const { return format == WeightFormat::mxfp4 || format == WeightFormat::affine; }
  // Bytes read by one full product with this matrix (weights plus scales), for bandwidth figures.
  int64_t storage_bytes() const;
};

}  // namespace mxgemma
