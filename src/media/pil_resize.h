// PIL's Image.resize for 8-bit images with the bicubic filter (Pillow 13.0.0, Resample.c), bit
// for bit: separable convolution with a = -0.5, the filter widened by the scale when
// shrinking (antialiasing), 22-bit fixed-point weights, and a horizontal pass (rounded and
// clipped to 8 bits) before the vertical pass.
#pragma once

#include <cstdint>
#include <vector>

namespace mxgemma::media_detail {

// `pixels` is [height, width, channels] of 8-bit samples; returns [out_height, out_width,
// channels].
std::vector<uint8_t> resize_bicubic_pil(const std::vector<uint8_t>& pixels, int width, int height,
                                        int channels, int out_width, int out_height);

}  // namespace mxgemma::media_detail
