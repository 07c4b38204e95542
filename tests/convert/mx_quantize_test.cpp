// The C++ quantizers against MLX 0.32.4 (goldens of scripts/oracle/quantize_goldens.py). The CPU
// rule and the affine kernel are compared with mx.quantize on MLX's CPU backend. The GPU rule is
// compared with that script's NumPy model of MLX's Metal kernel, because no Apple GPU can run
// the kernel itself here.
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "bundle/safetensors.h"
#include "convert/float_convert.h"
#include "convert/mx_quantize.h"

namespace mxgemma {
namespace {

const SafetensorsFile& goldens() {
  static const SafetensorsFile file(std::string(MXGEMMA_TEST_DATA_DIR) +
                                    "/quantize/quantize_goldens.safetensors");
  return file;
}

std::vector<std::string> case_names() {
  std::set<std::string> names;
  for (const auto& [name, tensor] : goldens().tensors()) names.insert(name.substr(0, name.find('.')));
  return {names.begin(), names.end()};
}

const Tensor& golden(const std::string& name) {
  const auto it = goldens().tensors().find(name);
  if (it == goldens().tensors().end()) throw std::runtime_error("golden tensor missing: " + name);
  return it->second;
}

std::vector<uint16_t> input_as_fp16(const std::string& case_name) {
  const Tensor& input = golden(case_name + ".input");
  std::vector<uint16_t> values(input.numel());
  convert_to_fp16(input.dtype, input.data, values.size(), values.data());
  return values;
}

// Index of the first differing element, or -1.
template <typename T>
int64_t first_mismatch(const std::vector<T>& actual, const Tensor& expected) {
  if (expected.nbytes != actual.size() * sizeof(T)) return 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    T value;
    std::memcpy(&value, static_cast<const uint8_t*>(expected.data) + i * sizeof(T), sizeof(T));
    if (value != actual[i]) return static_cast<int64_t>(i);
  }
  return -1;
}

void check_mxfp4(MxRounding rounding, const std::string& suffix) {
  const std::vector<std::string> names = case_names();
  ASSERT_GE(names.size(), 12u);
  for (const std::string& name : names) {
    const std::vector<uint16_t> values = input_as_fp16(name);
    std::vector<uint32_t> codes(values.size() / 8);
    std::vector<uint8_t> scales(values.size() / 32);
    quantize_mxfp4(values.data(), values.size(), rounding, codes.data(), scales.data());
    EXPECT_EQ(first_mismatch(scales, golden(name + "." + suffix + ".scales")), -1) << name;
    EXPECT_EQ(first_mismatch(codes, golden(name + "." + suffix + ".weight")), -1) << name;
  }
}

TEST(MxQuantize, Mxfp4CpuRuleMatchesMlxCpu) { check_mxfp4(MxRounding::cpu, "mxfp4_cpu"); }

TEST(MxQuantize, Mxfp4GpuRuleMatchesMetalModel) { check_mxfp4(MxRounding::gpu, "mxfp4_gpu"); }

void check_affine(int bits) {
  const std::string suffix = "affine" + std::to_string(bits);
  for (const std::string& name : case_names()) {
    const std::vector<uint16_t> values = input_as_fp16(name);
    std::vector<uint32_t> codes(values.size() * bits / 32);
    std::vector<uint16_t> scales(values.size() / 64);
    std::vector<uint16_t> biases(values.size() / 64);
    quantize_affine(values.data(), values.size(), bits, 64, codes.data(), scales.data(),
                    biases.data());
    EXPECT_EQ(first_mismatch(scales, golden(name + "." + suffix + ".scales")), -1) << name;
    EXPECT_EQ(first_mismatch(biases, golden(name + "." + suffix + ".biases")), -1) << name;
    EXPECT_EQ(first_mismatch(codes, golden(name + "." + suffix + ".weight")), -1) << name;
  }
}

TEST(MxQuantize, Affine4MatchesMlxCpu) { check_affine(4); }

TEST(MxQuantize, Affine8MatchesMlxCpu) { check_affine(8); }

// The two MXFP4 rules differ on exponent ties and code ties. The boundary case must show it, or
// else the GPU test above could pass with the CPU rule.
TEST(MxQuantize, GpuAndCpuRulesDifferOnBoundaries) {
  const std::vector<uint16_t> values = input_as_fp16("boundaries_f32");
  std::vector<uint32_t> gpu_codes(values.size() / 8), cpu_codes(values.size() / 8);
  std::vector<uint8_t> gpu_scales(values.size() / 32), cpu_scales(values.size() / 32);
  quantize_mxfp4(values.data(), values.size(), MxRounding::gpu, gpu_codes.data(), gpu_scales.data());
  quantize_mxfp4(values.data(), values.size(), MxRounding::cpu, cpu_codes.data(), cpu_scales.data());
  EXPECT_NE(gpu_codes, cpu_codes);
}

TEST(MxQuantize, RejectsPartialGroups) {
  std::vector<uint16_t> values(48);
  std::vector<uint32_t> codes(8);
  std::vector<uint8_t> scales(2);
  std::vector<uint16_t> scale16(2), bias16(2);
  EXPECT_THROW(quantize_mxfp4(values.data(), values.size(), MxRounding::cpu, codes.data(),
                              scales.data()),
               std::invalid_argument);
  EXPECT_THROW(quantize_affine(values.data(), values.size(), 4, 64, codes.data(), scale16.data(),
                               bias16.data()),
               std::invalid_argument);
  EXPECT_THROW(quantize_affine(values.data(), 64, 3, 64, codes.data(), scale16.data(),
                               bias16.data()),
               std::invalid_argument);
}

}  // namespace
}  // namespace mxgemma
