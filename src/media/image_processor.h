// Gemma 4 image preprocessing as transformers' Gemma4ImageProcessorPil (transformers 5.25) does
// it: an aspect-preserving resize to fit the soft-token budget, rescale, optional normalization,
// then 16x16 patches with their (x, y) grid positions, padded to the budget.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <vector>

#include "media/image.h"

namespace mxgemma {

// The image_processor section of processor_config.json, or a flat preprocessor_config.json.
// Defaults are those of the transformers class.
struct ImageProcessorConfig {
  int patch_size = 16;
  int max_soft_tokens = 280;  // one of 70, 140, 280, 560, 1120
  int pooling_kernel_size = 3;
  bool do_resize = true;
  bool do_rescale = true;
  double rescale_factor = 1.0 / 255.0;
  bool do_normalize = false;
  std::array<float, 3> image_mean = {0.0f, 0.0f, 0.0f};
  std::array<float, 3> image_std = {1.0f, 1.0f, 1.0f};

  // Patches the vision tower takes: max_soft_tokens * pooling_kernel_size^2.
  int max_patches() const { return max_soft_tokens * pooling_kernel_size * pooling_kernel_size; }
};

// Reads processor_config.json (its "image_processor" object) or preprocessor_config.json (the
// same keys at the top level). Throws std::runtime_error naming the file and field on a bad value,
// an unsupported max_soft_tokens or a resample filter other than bicubic.
ImageProcessorConfig load_image_processor_config(const std::filesystem::path& path);

struct ImageTargetSize {
  int height = 0;
  int width = 0;
};

// Computes the resized size: the largest multiples of pooling_kernel_size * patch_size that keep
// the aspect ratio within max_patches patches. A side that rounds to 0 becomes one multiple, and
// the other side follows the integer aspect ratio, capped. Throws std::invalid_argument when
// both sides round to 0.
ImageTargetSize aspect_ratio_preserving_size(int height, int width,
                                             const ImageProcessorConfig& config);

struct PreprocessedImage {
  int target_height = 0;
  int target_width = 0;
  int num_patches = 0;      // valid patches: (target_height / 16) * (target_width / 16)
  int max_patches = 0;      // rows in pixel_values, padding included
  int patch_dim = 0;        // 3 * patch_size^2
  int num_soft_tokens = 0;  // num_patches / pooling_kernel_size^2
  // [max_patches, patch_dim]; a patch is ordered (pixel_row, pixel_col, channel) and patches go
  // row by row over the image. Rows from num_patches on are zero padding.
  std::vector<float> pixel_values;
  // [max_patches, 2] as (x, y) = (patch column, patch row); (-1, -1) for padding rows.
  std::vector<int32_t> positions;
};

// Resizes, rescales, normalizes and patchifies one decoded image.
PreprocessedImage preprocess_image(const DecodedImage& image, const ImageProcessorConfig& config);

}  // namespace mxgemma
