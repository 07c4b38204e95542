// Times the Gemma 4 audio tower on a clip of seeded Gaussian noise.
// Usage: mxgemma_audio_bench BUNDLE [SECONDS=30] [THREADS=0 (all cores)] [RUNS=2]
// Prints the soft-token count, the feature extraction time and each tower + embedder run.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <vector>

#include "bundle/bundle.h"
#include "kernels/linear.h"
#include "kernels/thread_pool.h"
#include "media/audio_features.h"
#include "model/gemma4_audio.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s BUNDLE [SECONDS=30] [THREADS=0] [RUNS=2]\n", argv[0]);
    return 2;
  }
  const double clip_seconds = argc > 2 ? std::atof(argv[2]) : 30.0;
  const int threads = argc > 3 ? std::atoi(argv[3]) : 0;
  const int runs = argc > 4 ? std::atoi(argv[4]) : 2;
  try {
    using namespace mxgemma;
    const Bundle bundle = Bundle::open(argv[1]);
    ThreadPool pool(threads);
    Gemma4AudioModel audio(bundle, pool);
    const AudioFeatureConfig feature_config = load_audio_feature_config(bundle.dir() / "processor_config.json");

    std::mt19937 rng(1234);
    std::normal_distribution<float> noise(0.0f, 0.1f);
    std::vector<float> samples(size_t(clip_seconds * feature_config.sampling_rate));
    for (float& sample : samples) sample = noise(rng);

    auto start = std::chrono::steady_clock::now();
    const AudioFeatures features = extract_audio_features(samples, feature_config);
    const double feature_seconds = seconds_since(start);
    std::printf("%.1f s clip, %d frames, %d soft tokens, %d threads, kernels %s; features %.3f s\n",
                clip_seconds, features.num_frames, audio_soft_token_count(features, feature_config),
                pool.num_threads(), kernel_isa(), feature_seconds);
    for (int run = 0; run < runs; ++run) {
      start = std::chrono::steady_clock::now();
      const std::vector<float> soft = audio.encode_audio(features);
      const double tower_seconds = seconds_since(start);
      std::printf("run %d: tower + embed_audio %.3f s (%.3f x real time), %zu values\n", run, tower_seconds,
                  tower_seconds / clip_seconds, soft.size());
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "error: %s\n", error.what());
    return 1;
  }
  return 0;
}
