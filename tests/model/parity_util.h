// Helpers shared by the parity tests: the fixture bundles and a row-by-row comparison of logits
// or activations with a golden.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>

#include <unistd.h>

#include <nlohmann/json.hpp>

namespace mxgemma::parity {

inline const std::filesystem::path kFixtures = MXGEMMA_FIXTURE_DIR;

// fixtures/generated/<name>, or an error naming the setup script when it was not generated.
inline std::filesystem::path bundle_dir(const std::string& name) {
  const std::filesystem::path dir = kFixtures / "generated" / name;
  if (!std::filesystem::exists(dir / "config.json")) {
    throw std::runtime_error("fixture missing: " + dir.string() + ": run scripts/make_fixtures.sh");
  }
  return dir;
}

// Copies fixtures/generated/<name> to a fresh temporary folder named after `tag` and the process
// id, and rewrites its JSON file `file` (e.g. "config.json") through `edit`. Returns the folder,
// which the caller removes.
inline std::filesystem::path copy_bundle_with_edit(const std::string& name, const std::string& tag,
                                                   const std::string& file,
                                                   const std::function<void(nlohmann::json&)>& edit) {
  const std::filesystem::path copy =
      std::filesystem::temp_directory_path() / ("mxgemma_" + tag + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(copy);
  std::filesystem::copy(bundle_dir(name), copy, std::filesystem::copy_options::recursive);
  nlohmann::json json;
  {
    std::ifstream in(copy / file);
    json = nlohmann::json::parse(in);
  }
  edit(json);
  std::ofstream out(copy / file);
  out << json.dump();
  return copy;
}

// Parses fixtures/goldens/<file>. Throws std::runtime_error naming the oracle script that
// writes the file when it is missing.
inline nlohmann::json read_golden_manifest(const std::string& file, const std::string& script) {
  const std::filesystem::path path = kFixtures / "goldens" / file;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("missing " + path.string() + ": run " + script);
  return nlohmann::json::parse(in);
}

// The worst row's cosine similarity and the largest absolute difference over all values.
struct Comparison {
  double min_cosine = 1.0;
  double max_abs_diff = 0.0;
  int64_t worst_row = 0;
};

inline Comparison compare_rows(const float* actual, const float* expected, int64_t rows, int64_t cols) {
  Comparison result;
  for (int64_t r = 0; r < rows; ++r) {
    double dot = 0, aa = 0, ee = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const double a = actual[r * cols + c], e = expected[r * cols + c];
      dot += a * e;
      aa += a * a;
      ee += e * e;
      result.max_abs_diff = std::max(result.max_abs_diff, std::abs(a - e));
    }
    const double cosine = (aa == 0 && ee == 0) ? 1.0 : dot / std::sqrt(aa * ee);
    if (cosine < result.min_cosine) {
      result.min_cosine = cosine;
      result.worst_row = r;
    }
  }
  return result;
}

}  // namespace mxgemma::parity
