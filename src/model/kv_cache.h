// Keys and values of past positions for the layers that compute their own K/V.
//
// Sliding-window layers keep a ring of sliding_window + max_chunk positions. A chunk of new
// positions can then be written before attention without overwriting keys that its first queries
// still attend to. Full-attention layers grow with the context. KV-shared layers keep nothing: they read their source layer's entries.
// Entries are fp32, already normed and rotated, laid out [position][kv_head][head_dim].
#pragma once

#include <cstdint>
#include <vector>

#include "bundle/config.h"

namespace mxgemma {

class KVCache {
 public:
  // max_context: the maximum number of positions (prompt plus generated tokens).
  // max_chunk: the maximum number of positions one forward pass adds.
  KVCache(const TextConfig& config, int64_t max_context, int64_t max_chunk);

  int64_t length() const { return length_; }  // positions already committed
  int64_t max_context() const { return max_context_; }
  int64_t max_chunk() const { return max_chunk_; }

  // Drops every position (a new conversation); keeps the allocations.
  void clear();

  struct LayerView {
    bool sliding = false;
    int64_t capacity = 0;  // ring size for sliding layers, allocated positions for full layers
    int kv_heads = 0;
    int head_dim = 0;
    std::vector<float>* keys = nullptr;
    std::vector<float>* values = nullptr;
  };

  // Storage of a layer with its own K/V (not a KV-shared layer).
  LayerView layer(int index);

  // Slot of `position` in a layer's storage: position mod capacity for a ring.
  static int64_t slot(const LayerView& view, int64_t position) {
    return view.sliding ? position % view.capacity : position;
  }

  // Grows full-attention layers to hold `positions` entries; throws std::length_error past
  // max_context.
  void ensure_capacity(int64_t positions);

  // Records that positions [length, length + count) were written to every layer.
  void commit(int64_t count) { length_ += count; }

  // Bytes allocated for keys and values.
  int64_t allocated_bytes() const;

 private:
  struct LayerCache {
    bool owns_kv = false;
    bool sliding = false;
    int64_t capacity = 0;
    int kv_heads = 0;
    int head_dim = 0;
    std::vector<float> keys;
    std::vector<float> values;
  };

  static void resize(LayerCache& cache, int64_t positions);

  std::vector<LayerCache> layers_;
  int64_t max_context_ = 0;
  int64_t max_chunk_ = 0;
  int64_t length_ = 0;
};

}  // namespace mxgemma
