// mxgemma convert: a Hugging Face checkpoint to an MLX bundle.
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

#include "cli/commands.h"
#include "convert/convert.h"
#include "util/log.h"

namespace mxgemma::cli {
namespace {

struct ConvertCommandOptions {
  std::string src;
  std::string dst;
  std::string mode = "mxfp4";
  std::string rounding = "gpu";
  std::string dtype = "float16";
  std::string shard_size = "1000000000";
  ConvertOptions convert;
};

// Bytes from "1000000000", "500MB", "2GB", "64KB" (decimal units, as safetensors tooling sizes
// shards).
uint64_t parse_byte_size(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  const std::string unit = text.substr(digits);
  uint64_t multiplier = 0;
  if (unit.empty() || unit == "B") multiplier = 1;
  if (unit == "KB") multiplier = 1000;
  if (unit == "MB") multiplier = 1000 * 1000;
  if (unit == "GB") multiplier = 1000 * 1000 * 1000;
  if (digits == 0 || multiplier == 0 || digits > 15) {
    throw std::invalid_argument("--shard-size " + text +
                                ": expected a byte count such as 1000000000, 500MB or 2GB");
  }
  const uint64_t value = std::stoull(text.substr(0, digits)) * multiplier;
  if (value == 0) throw std::invalid_argument("--shard-size " + text + ": must be at least 1 byte");
  return value;
}

int run_convert(ConvertCommandOptions& options) {
  ConvertOptions& convert = options.convert;
  convert.mode = parse_quant_mode(options.mode);
  convert.rounding = options.rounding == "cpu" ? MxRounding::cpu : MxRounding::gpu;
  convert.dtype = options.dtype == "bfloat16" ? DType::bf16 : DType::f16;
  convert.shard_size = parse_byte_size(options.shard_size);

  const ConvertResult result = convert_checkpoint(options.src, options.dst, convert);
  const std::string quantized =
      convert.mode == QuantMode::none
          ? "none quantized"
          : std::to_string(result.num_quantized) + " quantized " + quant_mode_name(convert.mode);
  MXG_LOG_INFO("convert: %s (%s) -> %s: %zu tensors, %s, %zu shards, %llu bytes, %.1f s",
               options.src.c_str(), result.model_type.c_str(), options.dst.c_str(),
               result.num_tensors, quantized.c_str(), result.num_shards,
               static_cast<unsigned long long>(result.total_bytes), result.seconds);
  return 0;
}

}  // namespace

void add_convert_command(CLI::App& app, CommandAction& action) {
  auto options = std::make_shared<ConvertCommandOptions>();
  CLI::App* command = app.add_subcommand(
      "convert",
      "Convert a Hugging Face checkpoint (gemma4 or gemma3_text; safetensors in F32, F16 or BF16) "
      "into an MLX bundle");
  command->add_option("SRC", options->src, "Checkpoint folder with config.json and *.safetensors")
      ->required();
  command->add_option("DST", options->dst, "Bundle folder to create (must not exist unless --force)")
      ->required();
  command->add_option("--q-mode", options->mode,
                      "Quantization: mxfp4 (group 32, E8M0 scales), affine (MLX's 4/8-bit with fp16 "
                      "scales and biases) or none (all 16-bit)")
      ->check(CLI::IsMember({"mxfp4", "affine", "none"}))
      ->capture_default_str();
  command->add_option("--q-bits", options->convert.bits, "Bits per weight: 4 (mxfp4, affine) or 8 (affine)")
      ->check(CLI::IsMember({4, 8}))
      ->capture_default_str();
  command->add_option("--q-group-size", options->convert.group_size,
                      "Elements per quantization group (default: 32 for mxfp4, 64 for affine; "
                      "affine takes 32, 64 or 128)");
  command->add_option("--rounding", options->rounding,
                      "MXFP4 rounding to reproduce: gpu (MLX's Metal kernel, as the published "
                      "bundles were made) or cpu (mx.quantize of mlx[cpu] 0.32.4, bit for bit)")
      ->check(CLI::IsMember({"gpu", "cpu"}))
      ->capture_default_str();
  command->add_option("--dtype", options->dtype,
                      "Storage of unquantized tensors: float16 (Gemma 4 media towers stay bfloat16, "
                      "as in the published bundles) or bfloat16")
      ->check(CLI::IsMember({"float16", "bfloat16"}))
      ->capture_default_str();
  command->add_option("--shard-size", options->shard_size,
                      "Close a shard once it holds this many bytes of tensors (plain bytes or KB, "
                      "MB, GB in powers of 1000)")
      ->capture_default_str();
  command->add_option("--keep-16bit", options->convert.keep_16bit_regex,
                      "Keep tensors whose bundle name matches this ECMAScript regex unquantized "
                      "(wins over --quantize)");
  command->add_option("--quantize", options->convert.quantize_regex,
                      "Also quantize tensors whose bundle name matches this regex (e.g. "
                      "'embed_tokens\\.weight$')");
  command->add_flag("--force", options->convert.force, "Replace DST if it exists");
  command->footer(
      "Default choice of quantized tensors: for gemma4, the JANG converter's (decoder linears and "
      "embed_tokens_per_layer quantized; embed_tokens, norms, scalars and media towers 16-bit; "
      "k/v tensors of KV-shared layers dropped); for gemma3_text, mlx-lm's (every linear and the "
      "embedding). Weights are rounded to fp16 before quantizing.");
  command->callback([options, &action] { action = [options] { return run_convert(*options); }; });
}

}  // namespace mxgemma::cli
