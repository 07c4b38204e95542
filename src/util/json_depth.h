// Nesting depth of a parsed JSON value, measured without recursion. Copying, printing or
// converting a JSON value recurses once per level, so input nested tens of thousands of levels
// deep would overflow the stack there. Callers check the depth first and reject such input.
#pragma once

#include <utility>
#include <vector>

namespace mxgemma {

// Whether `root` nests arrays and objects more than `max_depth` levels deep (a scalar is depth 0,
// [] and {} are depth 1). Works with nlohmann::json and nlohmann::ordered_json.
template <class Json>
bool json_deeper_than(const Json& root, int max_depth) {
  std::vector<std::pair<const Json*, int>> pending = {{&root, 0}};
  while (!pending.empty()) {
    const auto [value, depth] = pending.back();
    pending.pop_back();
    if (!value->is_structured()) continue;
    if (depth + 1 > max_depth) return true;
    for (const auto& child : *value) pending.emplace_back(&child, depth + 1);
  }
  return false;
}

// The depth limit for request and tool JSON: far beyond any real tool schema or conversation.
inline constexpr int kMaxJsonDepth = 128;

}  // namespace mxgemma
