#include "convert/float_convert.h"

#include <stdexcept>
#include <string>

#include "util/half.h"

namespace mxgemma {
namespace {

template <typename Store>
void convert_each(DType dtype, const void* values, size_t count, uint16_t* out, Store store) {
  switch (dtype) {
    case DType::f32: {
      const auto* in = static_cast<const float*>(values);
      for (size_t i = 0; i < count; ++i) out[i] = store(in[i]);
      return;
    }
    case DType::f16: {
      const auto* in = static_cast<const uint16_t*>(values);
      for (size_t i = 0; i < count; ++i) out[i] = store(fp16_to_float(in[i]));
      return;
    }
    case DType::bf16: {
      const auto* in = static_cast<const uint16_t*>(values);
      for (size_t i = 0; i < count; ++i) out[i] = store(bf16_to_float(in[i]));
      return;
    }
    default:
      throw std::invalid_argument(std::string("cannot convert ") + dtype_name(dtype) +
                                  " values to a 16-bit float; expected F32, F16 or BF16");
  }
}

}  // namespace

void convert_to_fp16(DType dtype, const void* values, size_t count, uint16_t* out) {
  convert_each(dtype, values, count, out, [](float value) { return float_to_fp16(value); });
}

void convert_to_bf16(DType dtype, const void* values, size_t count, uint16_t* out) {
  convert_each(dtype, values, count, out, [](float value) { return float_to_bf16(value); });
}

}  // namespace mxgemma
