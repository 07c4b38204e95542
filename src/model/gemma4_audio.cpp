#include "model/gemma4_audio.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "kernels/linear.h"
#include "kernels/vector_ops.h"
#include "model/norms_rope.h"

namespace mxgemma {
namespace {

constexpr const char* kTower = "audio_tower.";
constexpr int kSubsampleKernel = 3;  // SSCP Conv2d kernel (3x3), stride 2, padding 1

float silu(float x) { return x / (1.0f + std::exp(-x)); }

// PyTorch's softplus, log(1 + e^x), which returns x itself above 20.
double softplus(double x) { return x > 20.0 ? x : std::log1p(std::exp(x)); }

// LayerNorm over the channels of each cell (weight, no bias), then ReLU.
void layer_norm_relu(const std::vector<float>& weight, float* cells, int64_t count, float eps) {
  const int64_t channels = int64_t(weight.size());
  for (int64_t cell = 0; cell < count; ++cell) {
    float* x = cells + cell * channels;
    double mean = 0.0;
    for (int64_t c = 0; c < channels; ++c) mean += x[c];
    mean /= double(channels);
    double variance = 0.0;
    for (int64_t c = 0; c < channels; ++c) variance += (x[c] - mean) * (x[c] - mean);
    variance /= double(channels);
    const float inv_std = float(1.0 / std::sqrt(variance + eps));
    for (int64_t c = 0; c < channels; ++c) x[c] = std::max(0.0f, (x[c] - float(mean)) * inv_std * weight[c]);
  }
}

// Output length of a kernel-3, stride-2, padding-1 convolution: (n + 2 - 3) / 2 + 1.
int64_t subsampled_length(int64_t n) { return (n - 1) / 2 + 1; }

// The processor's audio_seq_length from processor_config.json or preprocessor_config.json.
int processor_audio_seq_length(const Bundle& bundle) {
  for (const char* name : {"processor_config.json", "preprocessor_config.json"}) {
    const std::filesystem::path path = bundle.dir() / name;
    if (std::filesystem::exists(path)) return load_audio_feature_config(path).audio_seq_length;
  }
  return AudioFeatureConfig{}.audio_seq_length;
}

}  // namespace

Gemma4AudioModel::Gemma4AudioModel(const Bundle& bundle, ThreadPool& pool) : pool_(&pool) {
  const std::string config_path = (bundle.dir() / "config.json").string();
  if (!bundle.config().audio) throw std::invalid_argument("audio tower: " + config_path + " has no audio_config");
  config_ = *bundle.config().audio;
  text_hidden_size_ = bundle.text_config().hidden_size;
  audio_seq_length_ = processor_audio_seq_length(bundle);
  gradient_clip_ = float(std::min(config_.gradient_clipping, double(std::numeric_limits<float>::max())));

  if (config_.hidden_act != "silu") {
    throw std::runtime_error("audio tower: audio_config.hidden_act \"" + config_.hidden_act + "\" in " +
                             config_path + " is not supported (only silu, as in Gemma 4 E2B)");
  }
  // The query's own frame must be a key (context_left >= 2), or transformers' softmax would run
  // over masked logits only.
  if (config_.attention_context_left < 2 || config_.attention_context_right < 0 || config_.attention_chunk_size < 1 ||
      !(config_.attention_logit_cap > 0.0)) {
    throw std::runtime_error("audio tower: " + config_path + " has attention_context_left " +
                             std::to_string(config_.attention_context_left) + ", attention_context_right " +
                             std::to_string(config_.attention_context_right) + ", attention_chunk_size " +
                             std::to_string(config_.attention_chunk_size) + " and attention_logit_cap " +
                             std::to_string(config_.attention_logit_cap) +
                             "; expected at least 2, 0, 1 and a positive cap (E2B: 13, 0, 12, 50)");
  }
  subsampled_freq_ = int(subsampled_length(subsampled_length(config_.input_feat_size)));
  const std::string p = kTower;
  const std::string sscp = p + "subsample_conv_projection.";
  sscp_[0] = load_subsample_block(bundle, 0, 1, config_.subsampling_conv_channels[0]);
  sscp_[1] = load_subsample_block(bundle, 1, config_.subsampling_conv_channels[0],
                                  config_.subsampling_conv_channels[1]);
  input_proj_ = bundle.linear(sscp + "input_proj_linear");
  const int64_t flattened = int64_t(subsampled_freq_) * config_.subsampling_conv_channels[1];
  if (input_proj_.cols != flattened) {
    throw std::runtime_error("audio tower: " + sscp + "input_proj_linear takes " + std::to_string(input_proj_.cols) +
                             " inputs, but the subsampling output is " + std::to_string(subsampled_freq_) +
                             " mel bins x " + std::to_string(config_.subsampling_conv_channels[1]) + " channels");
  }

  const int head_dim = config_.hidden_size / config_.num_attention_heads;
  // Queries are scaled by (head_dim^-1/2 / ln 2) * softplus(per_dim_scale), keys by ln(1 + e) / ln 2.
  const double query_scale = 1.0 / std::sqrt(double(head_dim)) / std::log(2.0);
  const std::vector<float> positions = relative_position_embedding();
  const int64_t num_positions = int64_t(positions.size()) / config_.hidden_size;

  layers_.resize(config_.num_hidden_layers);
  for (int i = 0; i < config_.num_hidden_layers; ++i) {
    Layer& layer = layers_[i];
    const std::string l = p + "layers." + std::to_string(i) + ".";  // layer prefix
    for (auto [block, name] : {std::pair{&layer.feed_forward1, "feed_forward1."},
                               std::pair{&layer.feed_forward2, "feed_forward2."}}) {
      block->ffw_layer_1 = load_clipped(bundle, l + name + "ffw_layer_1");
      block->ffw_layer_2 = load_clipped(bundle, l + name + "ffw_layer_2");
      block->pre_layer_norm = bundle.tensor_f32(l + name + "pre_layer_norm.weight");
      block->post_layer_norm = bundle.tensor_f32(l + name + "post_layer_norm.weight");
    }
    layer.q_proj = load_clipped(bundle, l + "self_attn.q_proj");
    layer.k_proj = load_clipped(bundle, l + "self_attn.k_proj");
    layer.v_proj = load_clipped(bundle, l + "self_attn.v_proj");
    layer.post = load_clipped(bundle, l + "self_attn.post");
    const std::vector<float> per_dim_scale = bundle.tensor_f32(l + "self_attn.per_dim_scale");
    layer.query_scale.resize(size_t(head_dim));
    for (int d = 0; d < head_dim; ++d) layer.query_scale[d] = float(query_scale * softplus(per_dim_scale[d]));
    // The relative keys depend only on the weights, so they are projected once here.
    layer.relative_keys.resize(positions.size());
    matmul(bundle.linear(l + "self_attn.relative_k_proj"), positions.data(), num_positions,
           layer.relative_keys.data(), *pool_);

    layer.linear_start = load_clipped(bundle, l + "lconv1d.linear_start");
    layer.linear_end = load_clipped(bundle, l + "lconv1d.linear_end");
    layer.depthwise_kernel = bundle.tensor_f32(l + "lconv1d.depthwise_conv1d.weight");  // [hidden, kernel, 1]
    layer.lconv_pre_norm = bundle.tensor_f32(l + "lconv1d.pre_layer_norm.weight");
    layer.conv_norm = bundle.tensor_f32(l + "lconv1d.conv_norm.weight");
    layer.norm_pre_attn = bundle.tensor_f32(l + "norm_pre_attn.weight");
    layer.norm_post_attn = bundle.tensor_f32(l + "norm_post_attn.weight");
    layer.norm_out = bundle.tensor_f32(l + "norm_out.weight");
  }
  if (config_.output_proj_dims > 0) {
    output_proj_ = bundle.linear(p + "output_proj");
    output_bias_ = bundle.tensor_f32(p + "output_proj.bias");
  }
  embedding_projection_ = bundle.linear("embed_audio.embedding_projection");
}

Gemma4AudioModel::SubsampleBlock Gemma4AudioModel::load_subsample_block(const Bundle& bundle, int index,
                                                                        int in_channels, int out_channels) const {
  const std::string prefix = std::string(kTower) + "subsample_conv_projection.layer" + std::to_string(index) + ".";
  SubsampleBlock block;
  block.in_channels = in_channels;
  block.out_channels = out_channels;
  const std::vector<float> stored = bundle.tensor_f32(prefix + "conv.weight");
  const int taps = kSubsampleKernel * kSubsampleKernel;
  if (bundle.layout() == BundleLayout::hf_names) {
    // PyTorch [out, in, kh, kw] to [out, kh, kw, in].
    block.kernel.resize(stored.size());
    for (int o = 0; o < out_channels; ++o) {
      for (int c = 0; c < in_channels; ++c) {
        for (int tap = 0; tap < taps; ++tap) {
          block.kernel[(size_t(o) * taps + tap) * in_channels + c] = stored[(size_t(o) * in_channels + c) * taps + tap];
        }
      }
    }
  } else {
    block.kernel = stored;
  }
  block.norm = bundle.tensor_f32(prefix + "norm.weight");
  return block;
}

// Builds the sinusoids [num_positions, hidden] of transformers 5.25's
// Gemma4AudioRelPositionalEncoding for the relative positions p = context_size / 2 down to 0,
// where context_size = chunk + (context_left - 1) + context_right. A row is sin(p * inv_i) then
// cos(p * inv_i), with inv_i = exp(-i ln(10^4) / (hidden / 2 - 1)).
std::vector<float> Gemma4AudioModel::relative_position_embedding() const {
  const int64_t hidden = config_.hidden_size;
  const int64_t timescales = hidden / 2;
  const int context_size =
      config_.attention_chunk_size + config_.attention_context_left - 1 + config_.attention_context_right;
  const int64_t num_positions = context_size / 2 + 1;
  const double increment = std::log(10000.0) / double(std::max<int64_t>(timescales - 1, 1));
  std::vector<float> table(size_t(num_positions * hidden));
  for (int64_t i = 0; i < num_positions; ++i) {
    const double position = double(context_size / 2 - i);
    for (int64_t k = 0; k < timescales; ++k) {
      const float inv_timescale = float(std::exp(-double(k) * increment));
      const float angle = float(position) * inv_timescale;
      table[size_t(i * hidden + k)] = std::sin(angle);
      table[size_t(i * hidden + timescales + k)] = std::cos(angle);
    }
  }
  return table;
}

void Gemma4AudioModel::clamp_rows(float* x, int64_t count) const {
  for (int64_t i = 0; i < count; ++i) x[i] = std::clamp(x[i], -gradient_clip_, gradient_clip_);
}

void Gemma4AudioModel::check_features(const AudioFeatures& features) const {
  if (features.feature_size != config_.input_feat_size) {
    throw std::invalid_argument("audio tower: features have " + std::to_string(features.feature_size) +
                                " mel bins, but audio_config.input_feat_size is " +
                                std::to_string(config_.input_feat_size));
  }
  if (features.num_frames <= 0) throw std::invalid_argument("audio tower: the clip has no frames");
  const size_t frames = size_t(features.num_frames);
  if (features.input_features.size() != frames * size_t(features.feature_size) ||
      features.input_features_mask.size() != frames) {
    throw std::invalid_argument("audio tower: input_features has " + std::to_string(features.input_features.size()) +
                                " values and input_features_mask " +
                                std::to_string(features.input_features_mask.size()) + "; expected [" +
                                std::to_string(frames) + ", " + std::to_string(features.feature_size) + "] and [" +
                                std::to_string(frames) + "]");
  }
  const auto first_invalid = std::find(features.input_features_mask.begin(), features.input_features_mask.end(), 0);
  if (first_invalid == features.input_features_mask.begin()) {
    throw std::invalid_argument("audio tower: the clip has no valid frames");
  }
  if (std::find_if(first_invalid, features.input_features_mask.end(), [](uint8_t v) { return v != 0; }) !=
      features.input_features_mask.end()) {
    throw std::invalid_argument("audio tower: input_features_mask has a valid frame after an invalid one "
                                "(expected valid frames first, as extract_audio_features writes them)");
  }
}

std::vector<float> Gemma4AudioModel::encode_features(const AudioFeatures& features) {
  check_features(features);

  // The mask is valid frames then padding, so each stride-2 subsampling keeps a prefix of
  // ceil(valid / 2) valid frames. Valid positions read only valid ones: the attention masks
  // invalid keys, and the depthwise conv looks back only. So the conformer runs on the valid
  // rows alone and gives what the reference gives at those rows.
  const int64_t valid_frames = std::count(features.input_features_mask.begin(), features.input_features_mask.end(), 1);
  const int64_t rows = subsampled_length(subsampled_length(valid_frames));

  const int64_t hidden = config_.hidden_size;
  std::vector<float> hidden_states = subsample(features, rows);
  for (const Layer& layer : layers_) conformer_layer(layer, hidden_states.data(), rows);

  // The processor inserts min(rows, audio_seq_length) tokens (audio_soft_token_count), so the
  // tower returns the first that many rows. transformers' masked_scatter fills them in order.
  const int64_t tokens = std::min<int64_t>(rows, audio_seq_length_);
  if (config_.output_proj_dims <= 0) {
    hidden_states.resize(size_t(tokens * hidden));
    return hidden_states;
  }
  const int64_t out = config_.output_proj_dims;
  std::vector<float> output(size_t(tokens * out));
  matmul(output_proj_, hidden_states.data(), tokens, output.data(), *pool_);
  for (int64_t t = 0; t < tokens; ++t) add_scaled(output.data() + t * out, output_bias_.data(), 1.0f, out);
  return output;
}

std::vector<float> Gemma4AudioModel::subsample(const AudioFeatures& features, int64_t rows) {
  const int64_t frames = features.num_frames;
  const int64_t mel = features.feature_size;
  const int64_t valid_frames = std::count(features.input_features_mask.begin(), features.input_features_mask.end(), 1);

  const std::vector<float> first =
      subsample_block(sscp_[0], features.input_features, frames, mel, valid_frames);
  const int64_t time1 = subsampled_length(frames);
  const std::vector<float> second =
      subsample_block(sscp_[1], first, time1, subsampled_length(mel), subsampled_length(valid_frames));

  // The input projection reads each frame's [freq, channels] block flattened, at index
  // freq * channels + channel.
  std::vector<float> hidden(size_t(rows * config_.hidden_size));
  matmul(input_proj_, second.data(), rows, hidden.data(), *pool_);
  return hidden;
}

std::vector<float> Gemma4AudioModel::subsample_block(const SubsampleBlock& block, const std::vector<float>& input,
                                                     int64_t time, int64_t freq, int64_t valid_time) {
  const int64_t in_channels = block.in_channels;
  const int64_t out_channels = block.out_channels;
  const int64_t out_time = subsampled_length(time);
  const int64_t out_freq = subsampled_length(freq);
  const int64_t patch = int64_t(kSubsampleKernel) * kSubsampleKernel * in_channels;
  std::vector<float> output(size_t(out_time * out_freq * out_channels));

  // im2col over a few output frames at a time: each output cell's 3x3 x in_channels patch, in
  // the kernel's [kh][kw][in] order, with zeros for the padding and for masked frames. The
  // kernel has few rows (out_channels), so threads split the frames instead of the rows: each
  // takes whole steps, and matmul called from inside parallel_for runs on that thread alone.
  const int64_t frames_per_step = std::max<int64_t>(1, (int64_t(1) << 18) / (out_freq * patch));
  const int64_t steps = (out_time + frames_per_step - 1) / frames_per_step;
  const float eps = float(config_.rms_norm_eps);
  WeightMatrix kernel_matrix;  // the kernel as [out, 9 * in]
  kernel_matrix.format = WeightFormat::f32;
  kernel_matrix.bits = 32;
  kernel_matrix.rows = out_channels;
  kernel_matrix.cols = patch;
  kernel_matrix.data = block.kernel.data();
  pool_->parallel_for(steps, 1, [&](int64_t first_step, int64_t last_step) {
    thread_local std::vector<float> patches;
    for (int64_t step = first_step; step < last_step; ++step) {
      const int64_t t0 = step * frames_per_step;
      const int64_t t1 = std::min(out_time, t0 + frames_per_step);
      patches.assign(size_t((t1 - t0) * out_freq * patch), 0.0f);
      for (int64_t t = t0; t < t1; ++t) {
        for (int64_t f = 0; f < out_freq; ++f) {
          float* cell = patches.data() + ((t - t0) * out_freq + f) * patch;
          for (int kh = 0; kh < kSubsampleKernel; ++kh) {
            const int64_t source_t = 2 * t + kh - 1;
            if (source_t < 0 || source_t >= valid_time) continue;
            for (int kw = 0; kw < kSubsampleKernel; ++kw) {
              const int64_t source_f = 2 * f + kw - 1;
              if (source_f < 0 || source_f >= freq) continue;
              std::copy_n(input.data() + (source_t * freq + source_f) * in_channels, in_channels,
                          cell + (kh * kSubsampleKernel + kw) * in_channels);
            }
          }
        }
      }
      float* cells = output.data() + t0 * out_freq * out_channels;
      matmul(kernel_matrix, patches.data(), (t1 - t0) * out_freq, cells, *pool_);
      layer_norm_relu(block.norm, cells, (t1 - t0) * out_freq, eps);
    }
  });
  return output;
}

void Gemma4AudioModel::conformer_layer(const Layer& layer, float* hidden, int64_t rows) {
  const int64_t width = config_.hidden_size;
  const float eps = float(config_.rms_norm_eps);
  normed_.resize(size_t(rows * width));
  scratch_.resize(size_t(rows * width));

  feed_forward(layer.feed_forward1, hidden, rows);

  // x = x + norm_post_attn(clamp(attention(norm_pre_attn(clamp(x))))).
  std::copy_n(hidden, rows * width, normed_.data());
  clamp_rows(normed_.data(), rows * width);
  rms_norm_rows(normed_.data(), rows, width, layer.norm_pre_attn.data(), eps);
  attention(layer, normed_.data(), rows, scratch_.data());
  clamp_rows(scratch_.data(), rows * width);
  rms_norm_rows(scratch_.data(), rows, width, layer.norm_post_attn.data(), eps);
  add_scaled(hidden, scratch_.data(), 1.0f, rows * width);

  light_conv(layer, hidden, rows);
  feed_forward(layer.feed_forward2, hidden, rows);

  clamp_rows(hidden, rows * width);
  rms_norm_rows(hidden, rows, width, layer.norm_out.data(), eps);
}

// x = x + residual_weight * post_norm(clamp(W2 silu(W1 pre_norm(clamp(x))))).
void Gemma4AudioModel::feed_forward(const FeedForward& block, float* hidden, int64_t rows) {
  const int64_t width = config_.hidden_size;
  const int64_t inner = block.ffw_layer_1.weight.rows;
  const float eps = float(config_.rms_norm_eps);
  wide_.resize(size_t(rows * inner));

  std::copy_n(hidden, rows * width, normed_.data());
  clamp_rows(normed_.data(), rows * width);
  rms_norm_rows(normed_.data(), rows, width, block.pre_layer_norm.data(), eps);
  apply(block.ffw_layer_1, normed_.data(), rows, wide_.data());
  for (float& value : wide_) value = silu(value);
  apply(block.ffw_layer_2, wide_.data(), rows, scratch_.data());
  clamp_rows(scratch_.data(), rows * width);
  rms_norm_rows(scratch_.data(), rows, width, block.post_layer_norm.data(), eps);
  add_scaled(hidden, scratch_.data(), float(config_.residual_weight), rows * width);
}

// Chunked local attention as transformers 5.25 computes it. Query t attends to key j when
// 0 <= t - j < context_left - 1 or 0 < j - t < context_right. transformers builds this mask with
// sliding_window_mask_function((context_left - 1, context_right)), so E2B (context_left 13) gets
// the query's own frame and the 11 before it: 12 keys. mlx-vlm 0.7.10 builds the same window.
// Gemma 3n's audio tower, which this one derives from, also allowed t - j = 12 (13 keys); the
// reference is followed here. The blocking into chunks of attention_chunk_size with windows of
// context_size keys never cuts this window, so the chunks need no explicit treatment.
//
// logit = q' . k' + q' . r[i] with q' = q * q_scale * softplus(per_dim_scale), k' = k * ln(1 + e)
// / ln 2, and r the relative keys at index i = (context_left - 1) - (t - j), which the
// Transformer-XL shift of transformers' _rel_shift selects (zero past the last position). Then
// logit = cap * tanh(logit / cap), and a softmax over the window's keys.
void Gemma4AudioModel::attention(const Layer& layer, const float* normed, int64_t rows, float* output) {
  const int64_t width = config_.hidden_size;
  const int heads = config_.num_attention_heads;
  const int64_t head_dim = width / heads;
  const int64_t max_past = config_.attention_context_left - 1;
  const int64_t max_future = config_.attention_context_right;
  const int64_t num_positions = int64_t(layer.relative_keys.size()) / width;
  const float key_scale = float(std::log1p(std::exp(1.0)) / std::log(2.0));
  const float cap = float(config_.attention_logit_cap);
  query_.resize(size_t(rows * width));
  key_.resize(size_t(rows * width));
  value_.resize(size_t(rows * width));
  context_.resize(size_t(rows * width));

  apply(layer.q_proj, normed, rows, query_.data());
  apply(layer.k_proj, normed, rows, key_.data());
  apply(layer.v_proj, normed, rows, value_.data());
  for (int64_t t = 0; t < rows; ++t) {
    for (int h = 0; h < heads; ++h) {
      float* q = query_.data() + t * width + h * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) q[d] *= layer.query_scale[d];
    }
  }
  for (float& value : key_) value *= key_scale;

  pool_->parallel_for(rows * heads, 4, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> logits;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / heads;
      const int64_t offset = (item % heads) * head_dim;
      const float* q = query_.data() + t * width + offset;
      const int64_t first_key = std::max<int64_t>(0, t - max_past + 1);
      const int64_t last_key = std::min<int64_t>(rows - 1, t + std::max<int64_t>(max_future - 1, 0));
      logits.resize(size_t(last_key - first_key + 1));

      // Keys outside the window or past the valid rows are skipped: the reference sets their
      // logits to attention_invalid_logits_value (-1e9), whose softmax weight is 0 in fp32.
      float max_logit = -INFINITY;
      for (int64_t j = first_key; j <= last_key; ++j) {
        float logit = dot(q, key_.data() + j * width + offset, head_dim);
        const int64_t position = max_past - (t - j);
        if (position >= 0 && position < num_positions) {
          logit += dot(q, layer.relative_keys.data() + position * width + offset, head_dim);
        }
        logit = cap * std::tanh(logit / cap);
        logits[size_t(j - first_key)] = logit;
        max_logit = std::max(max_logit, logit);
      }
      float sum = 0.0f;
      for (float& logit : logits) {
        logit = std::exp(logit - max_logit);
        sum += logit;
      }
      float* out = context_.data() + t * width + offset;
      std::fill_n(out, head_dim, 0.0f);
      for (int64_t j = first_key; j <= last_key; ++j) {
        add_scaled(out, value_.data() + j * width + offset, logits[size_t(j - first_key)] / sum, head_dim);
      }
    }
  });
  apply(layer.post, context_.data(), rows, output);
}

// x = x + W_end silu(conv_norm(clamp(depthwise_conv(GLU(W_start pre_norm(x)))))), where the
// depthwise conv is causal: output t reads inputs t - kernel + 1 .. t, zero before the clip.
void Gemma4AudioModel::light_conv(const Layer& layer, float* hidden, int64_t rows) {
  const int64_t width = config_.hidden_size;
  const int64_t kernel = config_.conv_kernel_size;
  const float eps = float(config_.rms_norm_eps);
  wide_.resize(size_t(rows * 2 * width));

  std::copy_n(hidden, rows * width, normed_.data());
  rms_norm_rows(normed_.data(), rows, width, layer.lconv_pre_norm.data(), eps);
  apply(layer.linear_start, normed_.data(), rows, wide_.data());
  // GLU over the last axis: the first half times the sigmoid of the second half.
  for (int64_t t = 0; t < rows; ++t) {
    const float* row = wide_.data() + t * 2 * width;
    float* gated = normed_.data() + t * width;
    for (int64_t c = 0; c < width; ++c) gated[c] = row[c] / (1.0f + std::exp(-row[width + c]));
  }

  for (int64_t t = 0; t < rows; ++t) {
    float* out = scratch_.data() + t * width;
    for (int64_t c = 0; c < width; ++c) {
      const float* taps = layer.depthwise_kernel.data() + c * kernel;
      float sum = 0.0f;
      for (int64_t k = std::max<int64_t>(0, kernel - 1 - t); k < kernel; ++k) {
        sum += taps[k] * normed_[size_t((t - (kernel - 1) + k) * width + c)];
      }
      out[c] = sum;
    }
  }
  clamp_rows(scratch_.data(), rows * width);
  rms_norm_rows(scratch_.data(), rows, width, layer.conv_norm.data(), eps);
  for (int64_t i = 0; i < rows * width; ++i) scratch_[i] = silu(scratch_[i]);
  apply(layer.linear_end, scratch_.data(), rows, normed_.data());
  add_scaled(hidden, normed_.data(), 1.0f, rows * width);
}

std::vector<float> Gemma4AudioModel::embed(std::span<const float> tower_output) {
  return embed_multimodal(embedding_projection_, tower_output, output_size(), float(config_.rms_norm_eps),
                          "embed_audio", *pool_);
}

}  // namespace mxgemma
