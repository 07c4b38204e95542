#include "media/image_processor.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "bundle/json_fields.h"
#include "media/pil_resize.h"

namespace mxgemma {

namespace {

constexpr int kSupportedSoftTokens[] = {70, 140, 280, 560, 1120};
// PILImageResampling.BICUBIC, the value transformers writes for "resample".
constexpr int kResampleBicubic = 3;

std::array<float, 3> read_channel_triple(const JsonFields& fields, const std::string& key,
                                         std::array<float, 3> fallback) {
  const nlohmann::json& value = fields.raw(key);
  if (value.is_null()) return fallback;
  if (value.is_number()) {
    const float scalar = value.get<float>();
    return {scalar, scalar, scalar};
  }
  if (value.is_array() && value.size() == 3 &&
      std::all_of(value.begin(), value.end(), [](const auto& item) { return item.is_number(); })) {
    return {value[0].get<float>(), value[1].get<float>(), value[2].get<float>()};
  }
  fields.fail(key, "expected a number or a list of 3 numbers, found " + json_type_name(value));
}

void check_resample(const JsonFields& fields) {
  const nlohmann::json& value = fields.raw("resample");
  if (value.is_null()) return;
  if (value.is_number_integer() && value.get<int>() == kResampleBicubic) return;
  if (value.is_string()) {
    std::string name = value.get<std::string>();
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    if (name == "bicubic") return;
  }
  fields.fail("resample", "only bicubic (3) is supported, found " + value.dump());
}

}  // namespace

ImageProcessorConfig load_image_processor_config(const std::filesystem::path& path) {
  const nlohmann::json document = read_json_file(path);
  const std::string file = path.filename().string();
  if (!document.is_object()) {
    throw std::runtime_error(file + ": expected a JSON object, found " +
                             json_type_name(document));
  }
  const JsonFields top(document, file, "");
  // processor_config.json nests the image processor; preprocessor_config.json is flat.
  const std::optional<JsonFields> nested = top.optional_object("image_processor");
  const JsonFields& fields = nested ? *nested : top;

  ImageProcessorConfig config;
  config.patch_size = fields.get_int("patch_size", config.patch_size);
  config.max_soft_tokens = fields.get_int("max_soft_tokens", config.max_soft_tokens);
  config.pooling_kernel_size = fields.get_int("pooling_kernel_size", config.pooling_kernel_size);
  config.do_resize = fields.get_bool("do_resize", config.do_resize);
  config.do_rescale = fields.get_bool("do_rescale", config.do_rescale);
  config.rescale_factor = fields.get_double("rescale_factor", config.rescale_factor);
  config.do_normalize = fields.get_bool("do_normalize", config.do_normalize);
  config.image_mean = read_channel_triple(fields, "image_mean", config.image_mean);
  config.image_std = read_channel_triple(fields, "image_std", config.image_std);
  check_resample(fields);

  if (std::find(std::begin(kSupportedSoftTokens), std::end(kSupportedSoftTokens),
                config.max_soft_tokens) == std::end(kSupportedSoftTokens)) {
    fields.fail("max_soft_tokens", "must be one of 70, 140, 280, 560, 1120, found " +
                                       std::to_string(config.max_soft_tokens));
  }
  if (config.patch_size < 1 || config.patch_size > 64) {
    fields.fail("patch_size", "must be in [1, 64], found " + std::to_string(config.patch_size));
  }
  if (config.pooling_kernel_size < 1 || config.pooling_kernel_size > 8) {
    fields.fail("pooling_kernel_size", "must be in [1, 8], found " +
                                           std::to_string(config.pooling_kernel_size));
  }
  for (float deviation : config.image_std) {
    if (config.do_normalize && deviation == 0.0f) fields.fail("image_std", "contains 0");
  }
  return config;
}

ImageTargetSize aspect_ratio_preserving_size(int height, int width,
                                             const ImageProcessorConfig& config) {
  if (height <= 0 || width <= 0) {
    throw std::invalid_argument("image size " + std::to_string(height) + "x" +
                                std::to_string(width) + " has a side of 0");
  }
  const int max_patches = config.max_patches();
  const double target_pixels =
      static_cast<double>(max_patches) * config.patch_size * config.patch_size;
  const double factor = std::sqrt(target_pixels / (static_cast<double>(height) * width));
  const int side_multiple = config.pooling_kernel_size * config.patch_size;

  ImageTargetSize target;
  target.height = static_cast<int>(std::floor(factor * height / side_multiple)) * side_multiple;
  target.width = static_cast<int>(std::floor(factor * width / side_multiple)) * side_multiple;
  if (target.height == 0 && target.width == 0) {
    throw std::invalid_argument("image size " + std::to_string(height) + "x" +
                                std::to_string(width) + " resizes to 0x0");
  }
  // An extreme aspect ratio rounds one side to 0: that side gets one pooling cell and the other
  // side the integer aspect ratio in cells, capped at the whole budget in one row.
  const int max_side = (max_patches / (config.pooling_kernel_size * config.pooling_kernel_size)) *
                       side_multiple;
  if (target.height == 0) {
    target.height = side_multiple;
    target.width = static_cast<int>(std::min<int64_t>(int64_t{width / height} * side_multiple,
                                                      max_side));
  } else if (target.width == 0) {
    target.width = side_multiple;
    target.height = static_cast<int>(std::min<int64_t>(int64_t{height / width} * side_multiple,
                                                       max_side));
  }
  if (static_cast<double>(target.height) * target.width > target_pixels) {
    throw std::invalid_argument("image size " + std::to_string(height) + "x" +
                                std::to_string(width) + " resizes to " +
                                std::to_string(target.height) + "x" +
                                std::to_string(target.width) + ", beyond " +
                                std::to_string(max_patches) + " patches");
  }
  return target;
}

PreprocessedImage preprocess_image(const DecodedImage& image, const ImageProcessorConfig& config) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != static_cast<size_t>(image.width) * image.height * 3) {
    throw std::invalid_argument("preprocess_image: image of " + std::to_string(image.width) +
                                "x" + std::to_string(image.height) + " has " +
                                std::to_string(image.rgb.size()) + " bytes, expected w*h*3");
  }

  // Step 1: the aspect-preserving resize, skipped when the size already fits.
  int height = image.height;
  int width = image.width;
  std::vector<uint8_t> resized;
  const std::vector<uint8_t>* pixels = &image.rgb;
  if (config.do_resize) {
    const ImageTargetSize target = aspect_ratio_preserving_size(height, width, config);
    if (target.height != height || target.width != width) {
      resized = media_detail::resize_bicubic_pil(image.rgb, width, height, 3, target.width,
                                                 target.height);
      pixels = &resized;
      height = target.height;
      width = target.width;
    }
  }

  const int patch = config.patch_size;
  const int patches_down = height / patch;
  const int patches_across = width / patch;
  PreprocessedImage out;
  out.target_height = height;
  out.target_width = width;
  out.num_patches = patches_down * patches_across;
  out.max_patches = config.max_patches();
  out.patch_dim = 3 * patch * patch;
  out.num_soft_tokens =
      out.num_patches / (config.pooling_kernel_size * config.pooling_kernel_size);
  if (out.num_patches > out.max_patches) {
    // Reachable only with do_resize false: the reference would then fail to pad.
    throw std::invalid_argument("image of " + std::to_string(width) + "x" +
                                std::to_string(height) + " gives " +
                                std::to_string(out.num_patches) + " patches, more than " +
                                std::to_string(out.max_patches));
  }

  // Steps 2 and 3: transformers rescales in float64 and casts to float32, then normalizes in
  // float32. A lookup per channel value reproduces both. mlx-vlm 0.7.10 multiplies in float32
  // instead, which can differ by one float32 ulp; this follows transformers.
  std::array<std::array<float, 256>, 3> value_of;
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v) {
      float value = config.do_rescale ? static_cast<float>(v * config.rescale_factor)
                                      : static_cast<float>(v);
      if (config.do_normalize) value = (value - config.image_mean[c]) / config.image_std[c];
      value_of[c][v] = value;
    }
  }

  // Step 4: patches row by row; inside a patch (pixel_row, pixel_col, channel). Padding rows
  // stay zero with position (-1, -1).
  out.pixel_values.assign(static_cast<size_t>(out.max_patches) * out.patch_dim, 0.0f);
  out.positions.assign(static_cast<size_t>(out.max_patches) * 2, -1);
  for (int row = 0; row < patches_down; ++row) {
    for (int column = 0; column < patches_across; ++column) {
      const int index = row * patches_across + column;
      float* destination = out.pixel_values.data() + static_cast<size_t>(index) * out.patch_dim;
      for (int dy = 0; dy < patch; ++dy) {
        const uint8_t* source =
            pixels->data() + (static_cast<size_t>(row * patch + dy) * width + column * patch) * 3;
        for (int dx = 0; dx < patch; ++dx) {
          for (int c = 0; c < 3; ++c) *destination++ = value_of[c][source[dx * 3 + c]];
        }
      }
      out.positions[2 * index] = column;
      out.positions[2 * index + 1] = row;
    }
  }
  return out;
}

}  // namespace mxgemma
