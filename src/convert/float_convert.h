// Element conversions from checkpoint dtypes to the 16-bit formats a bundle stores.
#pragma once

#include <cstddef>
#include <cstdint>

#include "bundle/safetensors.h"

namespace mxgemma {

// Rounds `count` F32, F16 or BF16 values to fp16 through fp32 (ties to even, overflow to
// infinity), as numpy's astype(float16) does. Throws std::invalid_argument for other dtypes.
void convert_to_fp16(DType dtype, const void* values, size_t count, uint16_t* out);

// Rounds `count` F32, F16 or BF16 values to bf16 through fp32, ties to even.
void convert_to_bf16(DType dtype, const void* values, size_t count, uint16_t* out);

}  // namespace mxgemma
