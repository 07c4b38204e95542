// Fuzz target for decode_image, built three ways from this one file.
// With clang and -fsanitize=fuzzer it is a libFuzzer target (mxgemma_fuzz_image_decode).
// With other compilers MXGEMMA_FUZZ_DRIVER adds a driver that mutates the test images for N
// seconds: `mxgemma_fuzz_image_decode SECONDS [SEED]`. Configure with -DMXGEMMA_SANITIZE=ON so
// that AddressSanitizer checks it.
// Inside mxgemma_media_tests, a short deterministic run of the same mutations is a unit test.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "media/image.h"

namespace {

// Small limits keep each input fast: the fuzzer looks for memory errors, not for big images.
mxgemma::ImageDecodeLimits fuzz_limits() {
  mxgemma::ImageDecodeLimits limits;
  limits.max_side = 4096;
  limits.max_pixels = 4 << 20;
  return limits;
}

// Decodes one input. Returns false when the result breaks the DecodedImage contract; bad input
// may only end in std::invalid_argument.
bool decode_one(const uint8_t* data, size_t size) {
  try {
    const mxgemma::DecodedImage image =
        mxgemma::decode_image({data, size}, "fuzz input", fuzz_limits());
    return image.width > 0 && image.height > 0 &&
           image.rgb.size() == static_cast<size_t>(image.width) * image.height * 3;
  } catch (const std::invalid_argument&) {
    return true;
  }
}

[[maybe_unused]] std::vector<std::vector<uint8_t>> load_seeds(const std::filesystem::path& dir) {
  std::vector<std::vector<uint8_t>> seeds;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.find(".npy") != std::string::npos || name.ends_with(".json")) continue;
    if (entry.file_size() > 64 * 1024) continue;
    std::ifstream file(entry.path(), std::ios::binary);
    seeds.emplace_back(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  }
  return seeds;
}

// One mutation: flip bytes, overwrite with boundary values, truncate or splice a block.
[[maybe_unused]] std::vector<uint8_t> mutate(const std::vector<uint8_t>& seed,
                                             std::mt19937_64& random) {
  std::vector<uint8_t> out = seed;
  if (out.empty()) return out;
  const int edits = 1 + static_cast<int>(random() % 8);
  for (int i = 0; i < edits; ++i) {
    const size_t at = random() % out.size();
    switch (random() % 5) {
      case 0:
        out[at] ^= static_cast<uint8_t>(1u << (random() % 8));
        break;
      case 1:
        out[at] = static_cast<uint8_t>(random());
        break;
      case 2: {
        static constexpr uint8_t kBoundaries[] = {0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF};
        out[at] = kBoundaries[random() % std::size(kBoundaries)];
        break;
      }
      case 3:
        out.resize(std::max<size_t>(at, 1));
        break;
      default: {
        const size_t from = random() % out.size();
        const size_t length = std::min(out.size() - std::max(at, from), size_t{1} + random() % 64);
        std::memmove(out.data() + at, out.data() + from, length);
        break;
      }
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!decode_one(data, size)) std::abort();
  return 0;
}

#if defined(MXGEMMA_FUZZ_DRIVER)

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s SECONDS [SEED]\n", argv[0]);
    return 2;
  }
  const double seconds = std::atof(argv[1]);
  std::mt19937_64 random(argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1);
  const auto seeds = load_seeds(std::filesystem::path(MXGEMMA_TEST_DATA_DIR) / "images");
  if (seeds.empty()) {
    std::fprintf(stderr, "no seed images under %s/images\n", MXGEMMA_TEST_DATA_DIR);
    return 2;
  }
  const auto start = std::chrono::steady_clock::now();
  long runs = 0;
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() <
         seconds) {
    const std::vector<uint8_t> input = mutate(seeds[random() % seeds.size()], random);
    if (!decode_one(input.data(), input.size())) {
      std::fprintf(stderr, "contract broken after %ld runs\n", runs);
      return 1;
    }
    ++runs;
  }
  std::printf("fuzz_image_decode: %ld inputs in %.0f s, no failure\n", runs, seconds);
  return 0;
}

#elif defined(MXGEMMA_TEST_DATA_DIR)

#include <gtest/gtest.h>

TEST(ImageDecodeFuzz, MutatedTestImages) {
  const auto seeds = load_seeds(std::filesystem::path(MXGEMMA_TEST_DATA_DIR) / "images");
  ASSERT_GE(seeds.size(), 10u);
  std::mt19937_64 random(20260501);
  for (int run = 0; run < 3000; ++run) {
    const std::vector<uint8_t> input = mutate(seeds[run % seeds.size()], random);
    ASSERT_TRUE(decode_one(input.data(), input.size())) << "run " << run;
  }
}

#endif
