#include "media/pil_resize.h"

#include <algorithm>
#include <cmath>

namespace mxgemma::media_detail {

namespace {

// Fixed-point weights: 8 bits of pixel, 2 bits of headroom for lobes above 1 or below 0.
constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr double kBicubicSupport = 2.0;

// Keys' cubic convolution kernel with a = -0.5.
double bicubic_weight(double x) {
  constexpr double a = -0.5;
  x = std::abs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

// The taps of one output coordinate: input range [first, first + weights.size()).
struct Taps {
  int first = 0;
  std::vector<int32_t> weights;
};

// Taps for resampling `in_size` samples to `out_size`, with the same double arithmetic and
// roundings as Pillow's precompute_coeffs and normalize_coeffs_8bpc.
std::vector<Taps> compute_taps(int in_size, int out_size) {
  const double scale = static_cast<double>(static_cast<float>(in_size)) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = kBicubicSupport * filter_scale;
  const double inverse_filter_scale = 1.0 / filter_scale;

  std::vector<Taps> taps(out_size);
  std::vector<double> weights;
  for (int out = 0; out < out_size; ++out) {
    const double center = (out + 0.5) * scale;
    // Truncation toward zero after adding 0.5, as Pillow rounds these bounds.
    const int first = std::max(static_cast<int>(center - support + 0.5), 0);
    const int last = std::min(static_cast<int>(center + support + 0.5), in_size);
    const int count = std::max(last - first, 0);

    weights.assign(count, 0.0);
    double total = 0.0;
    for (int i = 0; i < count; ++i) {
      weights[i] = bicubic_weight((i + first - center + 0.5) * inverse_filter_scale);
      total += weights[i];
    }
    taps[out].first = first;
    taps[out].weights.resize(count);
    for (int i = 0; i < count; ++i) {
      const double normalized = total != 0.0 ? weights[i] / total : weights[i];
      const double fixed = normalized * (1 << kPrecisionBits);
      taps[out].weights[i] = static_cast<int32_t>(normalized < 0 ? fixed - 0.5 : fixed + 0.5);
    }
  }
  return taps;
}

uint8_t clip_fixed_point(int32_t sum) {
  return static_cast<uint8_t>(std::clamp(sum >> kPrecisionBits, 0, 255));
}

}  // namespace

std::vector<uint8_t> resize_bicubic_pil(const std::vector<uint8_t>& pixels, int width, int height,
                                        int channels, int out_width, int out_height) {
  const int32_t rounding = 1 << (kPrecisionBits - 1);
  const std::vector<Taps> row_taps = compute_taps(height, out_height);

  // Pillow skips a pass whose size does not change. When it runs the horizontal pass, it does so
  // only for the input rows the vertical taps read.
  std::vector<uint8_t> horizontal;
  const std::vector<uint8_t>* source = &pixels;
  int source_width = width;
  int row_offset = 0;
  if (out_width != width) {
    const int first_row = row_taps.front().first;
    const int end_row = row_taps.back().first + static_cast<int>(row_taps.back().weights.size());
    const std::vector<Taps> column_taps = compute_taps(width, out_width);
    horizontal.resize(static_cast<size_t>(end_row - first_row) * out_width * channels);
    for (int y = first_row; y < end_row; ++y) {
      const uint8_t* in_row = pixels.data() + static_cast<size_t>(y) * width * channels;
      uint8_t* out_row =
          horizontal.data() + static_cast<size_t>(y - first_row) * out_width * channels;
      for (int x = 0; x < out_width; ++x) {
        const Taps& taps = column_taps[x];
        for (int c = 0; c < channels; ++c) {
          int32_t sum = rounding;
          for (size_t i = 0; i < taps.weights.size(); ++i) {
            sum += in_row[(taps.first + i) * channels + c] * taps.weights[i];
          }
          out_row[x * channels + c] = clip_fixed_point(sum);
        }
      }
    }
    source = &horizontal;
    source_width = out_width;
    row_offset = first_row;
  }
  if (out_height == height) {
    return *source;
  }

  std::vector<uint8_t> out(static_cast<size_t>(out_height) * source_width * channels);
  const size_t row_stride = static_cast<size_t>(source_width) * channels;
  for (int y = 0; y < out_height; ++y) {
    const Taps& taps = row_taps[y];
    uint8_t* out_row = out.data() + y * row_stride;
    for (size_t x = 0; x < row_stride; ++x) {
      int32_t sum = rounding;
      for (size_t i = 0; i < taps.weights.size(); ++i) {
        sum += (*source)[(taps.first - row_offset + i) * row_stride + x] * taps.weights[i];
      }
      out_row[x] = clip_fixed_point(sum);
    }
  }
  return out;
}

}  // namespace mxgemma::media_detail
