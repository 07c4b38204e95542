// The Gemma 4 audio tower (model_type "gemma4_audio", a USM-style conformer) and the embedder
// that projects its output into the text model, computed in fp32 from the bundle's weights as
// transformers 5.25's Gemma4AudioModel and Gemma4MultimodalEmbedder compute them.
//
// Log-mel features [frames, 128] are read as a one-channel image (time x mel) and go through
// two subsampling blocks (SSCP): Conv2d 3x3 stride 2 padding 1 without bias, LayerNorm over
// channels (weight only), ReLU. Each block first zeroes the frames the mask marks invalid, and
// the mask keeps every other frame. The [frames / 4, mel / 4, channels] result is flattened per
// frame and projected to the hidden size. Each conformer layer is
//   x = FFW(x); x = x + norm(attention(norm(x))); x = LightConv(x); x = FFW(x); x = norm(x)
// where FFW(x) = x + residual_weight * norm(W2 silu(W1 norm(x))), the attention is chunked
// local attention over the past (the query's frame and the 11 before it in E2B) with a learned
// per-dimension query scale, a fixed key scale, Transformer-XL relative-position logits and a
// logit soft cap, and LightConv(x) = x + W_end silu(norm(causal_depthwise_conv(GLU(W_start
// norm(x))))). Linears may clamp their input and output ("clipped linears"). An output
// projection with bias maps to output_proj_dims. The embedder applies a scale-free RMSNorm and a
// linear map to the text hidden size.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "bundle/bundle.h"
#include "kernels/thread_pool.h"
#include "kernels/weight_matrix.h"
#include "media/audio_features.h"
#include "model/tower_layers.h"

namespace mxgemma {

class Gemma4AudioModel {
 public:
  // Reads the audio tower and embed_audio weights, and the processor's audio_seq_length from
  // processor_config.json (or preprocessor_config.json; the default 750 without either). Throws
  // std::invalid_argument when the bundle has no audio_config. Throws std::runtime_error for an
  // audio_config this runtime cannot run (hidden_act other than silu, attention_context_left
  // under 2, a negative attention_context_right, a non-positive attention_logit_cap, an input
  // projection whose width is not the flattened subsampling output) or an invalid processor
  // config.
  Gemma4AudioModel(const Bundle& bundle, ThreadPool& pool);

  const AudioConfig& config() const { return config_; }
  int text_hidden_size() const { return text_hidden_size_; }

  // Runs the tower on one clip's features (from extract_audio_features). Returns [n,
  // output_proj_dims] (hidden_size without an output projection) for the n valid positions of
  // the subsampled mask, in order, capped at the processor's audio_seq_length. So n equals
  // audio_soft_token_count(features, feature config), which subsamples the mask the same way
  // (every other frame, twice), counts it and applies the same cap. Throws
  // std::invalid_argument on a feature width other than input_feat_size, sizes that do not
  // match num_frames, an empty clip, a clip without valid frames, or a mask whose valid frames
  // are not all before its invalid ones (extract_audio_features writes them so).
  std::vector<float> encode_features(const AudioFeatures& features);

  // embed_audio: a scale-free RMSNorm, then a linear map from tower rows to [rows,
  // text_hidden_size()]. Throws std::invalid_argument when the size is not a multiple of the
  // tower's output width.
  std::vector<float> embed(std::span<const float> tower_output);

  // encode_features then embed: the soft tokens of one clip, [n, text_hidden_size].
  std::vector<float> encode_audio(const AudioFeatures& features) { return embed(encode_features(features)); }

 private:
  // One SSCP block: Conv2d 3x3 stride 2 padding 1 (no bias), then LayerNorm over channels.
  struct SubsampleBlock {
    int in_channels = 0;
    int out_channels = 0;
    std::vector<float> kernel;  // [out][kh][kw][in], the MLX layout
    std::vector<float> norm;     // [out]
  };

  struct FeedForward {
    ClippedLinear ffw_layer_1, ffw_layer_2;
    std::vector<float> pre_layer_norm, post_layer_norm;
  };

  struct Layer {
    FeedForward feed_forward1, feed_forward2;
    ClippedLinear q_proj, k_proj, v_proj, post;
    std::vector<float> query_scale;    // [head_dim]: q_scale * softplus(per_dim_scale)
    std::vector<float> relative_keys;  // [num_positions, hidden]: relative_k_proj of the sinusoids
    ClippedLinear linear_start, linear_end;
    std::vector<float> depthwise_kernel;  // [hidden, kernel]
    std::vector<float> lconv_pre_norm, conv_norm;
    std::vector<float> norm_pre_attn, norm_post_attn, norm_out;
  };

  // Width of a tower output row: output_proj_dims, or hidden_size without an output projection.
  int output_size() const { return config_.output_proj_dims > 0 ? config_.output_proj_dims : config_.hidden_size; }
  ClippedLinear load_clipped(const Bundle& bundle, const std::string& module) const {
    return load_clipped_linear(bundle, module, config_.use_clipped_linears);
  }
  SubsampleBlock load_subsample_block(const Bundle& bundle, int index, int in_channels, int out_channels) const;
  std::vector<float> relative_position_embedding() const;
  void apply(const ClippedLinear& linear, const float* x, int64_t rows, float* y) {
    apply_clipped_linear(linear, x, rows, y, clipped_, *pool_);
  }
  void check_features(const AudioFeatures& features) const;

  // SSCP on the features: returns [rows, hidden] for the first `rows` subsampled frames.
  std::vector<float> subsample(const AudioFeatures& features, int64_t rows);
  // One SSCP block over [time, freq, in_channels] with `valid_time` unmasked frames: zeroes the
  // others, convolves, normalizes, applies ReLU. Returns [out_time, out_freq, out_channels].
  std::vector<float> subsample_block(const SubsampleBlock& block, const std::vector<float>& input, int64_t time,
                                     int64_t freq, int64_t valid_time);

  void conformer_layer(const Layer& layer, float* hidden, int64_t rows);
  void feed_forward(const FeedForward& block, float* hidden, int64_t rows);
  void attention(const Layer& layer, const float* normed, int64_t rows, float* output);
  void light_conv(const Layer& layer, float* hidden, int64_t rows);
  void clamp_rows(float* x, int64_t count) const;

  AudioConfig config_;
  ThreadPool* pool_;
  int text_hidden_size_ = 0;
  int audio_seq_length_ = 750;
  int subsampled_freq_ = 0;  // mel bins left after the two SSCP blocks
  float gradient_clip_ = 0.0f;
  SubsampleBlock sscp_[2];
  WeightMatrix input_proj_;
  std::vector<Layer> layers_;
  WeightMatrix output_proj_;  // only when config_.output_proj_dims > 0
  std::vector<float> output_bias_;
  WeightMatrix embedding_projection_;

  // Scratch for one clip, reused between calls.
  std::vector<float> normed_, scratch_, clipped_, wide_;
  std::vector<float> query_, key_, value_, context_;
};

}  // namespace mxgemma
