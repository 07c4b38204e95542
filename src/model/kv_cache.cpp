#include "model/kv_cache.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace mxgemma {

KVCache::KVCache(const TextConfig& config, int64_t max_context, int64_t max_chunk)
    : max_context_(max_context), max_chunk_(max_chunk) {
  if (max_context <= 0 || max_chunk <= 0) {
    throw std::invalid_argument("KV cache: context and chunk sizes must be positive");
  }
  layers_.resize(config.num_hidden_layers);
  for (int i = 0; i < config.num_hidden_layers; ++i) {
    LayerCache& cache = layers_[i];
    cache.owns_kv = !config.is_kv_shared(i);
    if (!cache.owns_kv) continue;
    cache.sliding = !config.is_full_attention(i) && config.sliding_window > 0;
    cache.kv_heads = config.layer_kv_heads(i);
    cache.head_dim = config.layer_head_dim(i);
    if (cache.sliding) {
      resize(cache, std::min<int64_t>(int64_t(config.sliding_window) + max_chunk, max_context));
    } else {
      // Full layers grow on demand, so short conversations stay small.
      resize(cache, std::min<int64_t>(max_context, 256));
    }
  }
}

void KVCache::resize(LayerCache& cache, int64_t positions) {
  const size_t floats = size_t(positions) * cache.kv_heads * cache.head_dim;
  cache.keys.resize(floats);
  cache.values.resize(floats);
  cache.capacity = positions;
}

void KVCache::ensure_capacity(int64_t positions) {
  if (positions > max_context_) {
    throw std::length_error("context is full: " + std::to_string(positions) +
                            " positions needed, the context size is " + std::to_string(max_context_));
  }
  for (LayerCache& cache : layers_) {
    if (!cache.owns_kv || cache.sliding || cache.capacity >= positions) continue;
    resize(cache, std::min(max_context_, std::max(positions, cache.capacity * 2)));
  }
}

void KVCache::clear() { length_ = 0; }

int64_t KVCache::allocated_bytes() const {
  int64_t bytes = 0;
  for (const LayerCache& cache : layers_) {
    bytes += int64_t(cache.keys.size() + cache.values.size()) * int64_t(sizeof(float));
  }
  return bytes;
}

KVCache::LayerView KVCache::layer(int index) {
  LayerCache& cache = layers_.at(index);
  if (!cache.owns_kv) {
    throw std::logic_error("KV cache: layer " + std::to_string(index) + " is KV-shared and has no cache");
  }
  return {cache.sliding, cache.capacity, cache.kv_heads, cache.head_dim, &cache.keys, &cache.values};
}

}  // namespace mxgemma
