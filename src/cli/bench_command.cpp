// mxgemma bench: load time, prefill and decode speed, memory, and decode against the machine's
// memory-bandwidth bound. With --image or --audio it times turning that file into soft tokens.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "engine/sampler.h"
#include "kernels/linear.h"
#include "kernels/thread_pool.h"
#include "kernels/vector_ops.h"
#include "media/audio_decode.h"
#include "media/audio_features.h"
#include "media/image.h"
#include "media/image_processor.h"
#include "model/gemma4_audio.h"
#include "model/gemma4_vision.h"

namespace mxgemma::cli {
namespace {

struct BenchOptions {
  ModelOptions model;
  int prompt_tokens = 512;
  int decode_tokens = 128;
  std::string prompt_file;
  std::string image;
  std::string audio;
  int repeat = 3;
  bool json = false;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Best of five multi-threaded sequential reads of a 1 GiB buffer, in bytes per second. The reads
// go through the same vectorized kernels as the model, so the figure is what streaming code here
// can reach.
double measure_read_bandwidth(ThreadPool& pool) {
  const int64_t count = (int64_t(1) << 30) / int64_t(sizeof(float));
  std::vector<float> buffer(static_cast<size_t>(count));
  pool.parallel_for(count, 1 << 16, [&](int64_t begin, int64_t end) {
    std::fill(buffer.begin() + begin, buffer.begin() + end, 1.0f);
  });
  double best = 0.0;
  for (int trial = 0; trial < 5; ++trial) {
    std::vector<double> sums(static_cast<size_t>(pool.num_threads()), 0.0);
    const auto start = std::chrono::steady_clock::now();
    pool.parallel_for(count, 1 << 16, [&](int64_t begin, int64_t end) {
      sums[size_t(begin * int64_t(sums.size()) / count)] += sum_squares(buffer.data() + begin, end - begin);
    });
    const double seconds = seconds_since(start);
    // Checking the sum keeps the compiler from dropping the reads.
    double total = 0.0;
    for (double s : sums) total += s;
    if (std::abs(total - double(count)) > 0.01 * double(count)) {
      throw std::runtime_error("bench: the bandwidth probe read wrong data");
    }
    best = std::max(best, double(count) * sizeof(float) / seconds);
  }
  return best;
}

std::vector<int32_t> bench_prompt(const BenchOptions& options, int32_t vocab, int32_t bos) {
  if (!options.prompt_file.empty()) {
    std::ifstream in(options.prompt_file);
    nlohmann::json parsed = nlohmann::json::parse(in, nullptr, false);
    if (parsed.is_discarded() || !parsed.is_array() || parsed.empty()) {
      throw std::invalid_argument(options.prompt_file + ": expected a non-empty JSON array of token ids");
    }
    return parsed.get<std::vector<int32_t>>();
  }
  // Spread-out ids after BOS, valid for any vocabulary; bench/run_bench.sh gives the peer the same
  // list through --prompt-file.
  std::vector<int32_t> ids = {bos};
  for (int i = 1; i < options.prompt_tokens; ++i) ids.push_back(int32_t(3 + (int64_t(i) * 7919) % (vocab - 3)));
  return ids;
}

// The best of `repeat` runs of `run`, after one warm-up run, in seconds.
template <typename Run>
double best_seconds(int repeat, Run&& run) {
  run();
  double best = INFINITY;
  for (int i = 0; i < repeat; ++i) {
    const auto start = std::chrono::steady_clock::now();
    run();
    best = std::min(best, seconds_since(start));
  }
  return best;
}

// Image to soft tokens: decoding and preprocessing, then the vision tower and embedder.
nlohmann::json bench_image(const BenchOptions& options, const Bundle& bundle, ThreadPool& pool) {
  const auto load_start = std::chrono::steady_clock::now();
  Gemma4VisionModel vision(bundle, pool);
  const double load_seconds = seconds_since(load_start);
  const ImageProcessorConfig config = load_image_processor_config(bundle.dir() / "processor_config.json");
  PreprocessedImage image;
  const double preprocess_seconds =
      best_seconds(options.repeat, [&] { image = preprocess_image(decode_image_file(options.image), config); });
  std::vector<float> soft;
  const double tower_seconds =
      best_seconds(options.repeat, [&] { soft = vision.encode_image(image.pixel_values, image.positions); });
  return {
      {"file", options.image},
      {"width_after_resize", image.target_width},
      {"height_after_resize", image.target_height},
      {"soft_tokens", image.num_soft_tokens},
      {"tower_load_seconds", load_seconds},
      {"preprocess_seconds", preprocess_seconds},
      {"tower_seconds", tower_seconds},
      {"encode_seconds", preprocess_seconds + tower_seconds},
  };
}

// Audio file to soft tokens: decoding and resampling, log-mel features, then the audio tower and
// embedder. The real-time factor counts features and tower, as the peer's does.
nlohmann::json bench_audio(const BenchOptions& options, const Bundle& bundle, ThreadPool& pool) {
  const auto load_start = std::chrono::steady_clock::now();
  Gemma4AudioModel audio(bundle, pool);
  const double load_seconds = seconds_since(load_start);
  const AudioFeatureConfig config = load_audio_feature_config(bundle.dir() / "processor_config.json");
  std::vector<float> samples;
  const double decode_seconds =
      best_seconds(options.repeat, [&] { samples = load_audio_file(options.audio, config.sampling_rate); });
  const double clip_seconds = double(samples.size()) / config.sampling_rate;
  if (int64_t(samples.size()) > config.max_length) {
    throw std::invalid_argument("--audio: " + options.audio + " is longer than the " +
                                std::to_string(config.max_length / config.sampling_rate) + " s one clip can hold");
  }
  AudioFeatures features;
  const double features_seconds =
      best_seconds(options.repeat, [&] { features = extract_audio_features(samples, config); });
  std::vector<float> soft;
  const double tower_seconds = best_seconds(options.repeat, [&] { soft = audio.encode_audio(features); });
  const double encode_seconds = features_seconds + tower_seconds;
  return {
      {"file", options.audio},
      {"clip_seconds", clip_seconds},
      {"soft_tokens", int64_t(soft.size()) / audio.text_hidden_size()},
      {"tower_load_seconds", load_seconds},
      {"decode_seconds", decode_seconds},
      {"features_seconds", features_seconds},
      {"tower_seconds", tower_seconds},
      {"encode_seconds", encode_seconds},
      {"real_time_factor", encode_seconds / clip_seconds},
  };
}

// Bandwidth and the decode bound it sets, printed by every mode of the bench.
void add_decode_bound(nlohmann::json& report, const Gemma4TextModel& model, ThreadPool& pool) {
  const double bandwidth = measure_read_bandwidth(pool);
  const double bytes_per_token = double(model.weight_bytes_per_token());
  report["weight_bytes_per_token"] = bytes_per_token;
  report["read_bandwidth_bytes_per_second"] = bandwidth;
  report["decode_bound_tokens_per_second"] = bandwidth / bytes_per_token;
}

int bench_media(const BenchOptions& options) {
  LoadedModel loaded = load_model(options.model);
  nlohmann::json report = {
      {"load_seconds", loaded.load_seconds},
      {"threads", loaded.pool->num_threads()},
      {"kernel_isa", kernel_isa()},
  };
  if (!options.image.empty()) report["image"] = bench_image(options, *loaded.bundle, *loaded.pool);
  if (!options.audio.empty()) report["audio"] = bench_audio(options, *loaded.bundle, *loaded.pool);
  report["peak_rss_bytes"] = peak_rss_bytes();
  add_decode_bound(report, *loaded.model, *loaded.pool);
  if (options.json) {
    std::printf("%s\n", report.dump(2).c_str());
    return 0;
  }
  if (report.contains("image")) {
    const nlohmann::json& image = report["image"];
    std::printf("image                %s: %dx%d after resizing, %d soft tokens\n", options.image.c_str(),
                image["width_after_resize"].get<int>(), image["height_after_resize"].get<int>(),
                image["soft_tokens"].get<int>());
    std::printf("  preprocess         %.3f s\n", image["preprocess_seconds"].get<double>());
    std::printf("  vision tower       %.3f s (best of %d)\n", image["tower_seconds"].get<double>(), options.repeat);
    std::printf("  encode             %.3f s\n", image["encode_seconds"].get<double>());
  }
  if (report.contains("audio")) {
    const nlohmann::json& audio = report["audio"];
    std::printf("audio                %s: %.1f s, %d soft tokens\n", options.audio.c_str(),
                audio["clip_seconds"].get<double>(), audio["soft_tokens"].get<int>());
    std::printf("  decode, resample   %.3f s\n", audio["decode_seconds"].get<double>());
    std::printf("  log-mel features   %.3f s\n", audio["features_seconds"].get<double>());
    std::printf("  audio tower        %.3f s (best of %d)\n", audio["tower_seconds"].get<double>(), options.repeat);
    std::printf("  real-time factor   %.3f\n", audio["real_time_factor"].get<double>());
  }
  // Taken before the bandwidth probe, whose 1 GiB buffer is not the model's.
  std::printf("peak RSS             %s\n", format_bytes(report["peak_rss_bytes"].get<double>()).c_str());
  std::printf("read bandwidth       %.2f GB/s (%d threads, %s kernels)\n",
              report["read_bandwidth_bytes_per_second"].get<double>() / 1e9, loaded.pool->num_threads(), kernel_isa());
  std::printf("decode bound         %.2f tok/s\n", report["decode_bound_tokens_per_second"].get<double>());
  return 0;
}

int bench(const BenchOptions& options) {
  if (!options.image.empty() || !options.audio.empty()) return bench_media(options);
  LoadedModel loaded = load_model(options.model);
  Gemma4TextModel& model = *loaded.model;
  const std::vector<int32_t> prompt = bench_prompt(options, model.vocab_size(), loaded.bundle->generation_config().bos_token_id);

  KVCache cache = model.make_cache(int64_t(prompt.size()) + options.decode_tokens + 1, 512);
  std::vector<float> logits;
  const auto prefill_start = std::chrono::steady_clock::now();
  model.forward(prompt, cache, Gemma4TextModel::Logits::last, logits);
  const double prefill_seconds = seconds_since(prefill_start);
  int32_t token = argmax(logits);
  const double time_to_first_token = seconds_since(prefill_start);

  const auto decode_start = std::chrono::steady_clock::now();
  for (int i = 0; i < options.decode_tokens; ++i) {
    model.forward(std::span<const int32_t>(&token, 1), cache, Gemma4TextModel::Logits::last, logits);
    token = argmax(logits);
  }
  const double decode_seconds = seconds_since(decode_start);

  const double prefill_rate = double(prompt.size()) / prefill_seconds;
  const double decode_rate = options.decode_tokens / decode_seconds;

  nlohmann::json report = {
      {"load_seconds", loaded.load_seconds},
      {"tokenizer_load_seconds", loaded.tokenizer_seconds},
      {"prompt_tokens", prompt.size()},
      {"prefill_tokens_per_second", prefill_rate},
      {"decode_tokens", options.decode_tokens},
      {"decode_tokens_per_second", decode_rate},
      {"time_to_first_token_seconds", time_to_first_token},
      {"peak_rss_bytes", peak_rss_bytes()},
      {"threads", loaded.pool->num_threads()},
      {"kernel_isa", kernel_isa()},
  };
  add_decode_bound(report, model, *loaded.pool);
  const double bandwidth = report["read_bandwidth_bytes_per_second"];
  const double bytes_per_token = report["weight_bytes_per_token"];
  const double bound = report["decode_bound_tokens_per_second"];
  report["decode_fraction_of_bound"] = decode_rate / bound;
  if (options.json) {
    std::printf("%s\n", report.dump(2).c_str());
    return 0;
  }
  std::printf("load time            %.2f s (tokenizer %.2f s)\n", loaded.load_seconds, loaded.tokenizer_seconds);
  std::printf("prefill              %.1f tok/s (%zu tokens)\n", prefill_rate, prompt.size());
  std::printf("decode               %.2f tok/s (%d tokens)\n", decode_rate, options.decode_tokens);
  std::printf("time to first token  %.3f s\n", time_to_first_token);
  // Taken before the bandwidth probe, whose 1 GiB buffer is not the model's.
  std::printf("peak RSS             %s\n", format_bytes(report["peak_rss_bytes"].get<double>()).c_str());
  std::printf("weights per token    %s\n", format_bytes(bytes_per_token).c_str());
  std::printf("read bandwidth       %.2f GB/s (%d threads, %s kernels)\n", bandwidth / 1e9, loaded.pool->num_threads(),
              kernel_isa());
  std::printf("decode bound         %.2f tok/s; decode reaches %.0f%% of it\n", bound, 100.0 * decode_rate / bound);
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, CommandAction& action) {
  auto options = std::make_shared<BenchOptions>();
  CLI::App* command = app.add_subcommand("bench", "Measure load, prefill and decode speed against the bandwidth bound");
  command->add_option("-m,--model", options->model.bundle_dir, "Bundle folder");
  command->add_option("--prompt-tokens", options->prompt_tokens, "Prompt length")->check(CLI::Range(2, 1 << 20))->capture_default_str();
  command->add_option("--decode-tokens", options->decode_tokens, "Tokens to decode")->check(CLI::Range(1, 1 << 20))->capture_default_str();
  command->add_option("--prompt-file", options->prompt_file, "A JSON array of prompt token ids (overrides --prompt-tokens)");
  command->add_option("--image", options->image,
                      "Time decoding, preprocessing and the vision tower on this image instead of prefill and decode")
      ->check(CLI::ExistingFile);
  command->add_option("--audio", options->audio,
                      "Time decoding, log-mel features and the audio tower on this clip instead of prefill and decode")
      ->check(CLI::ExistingFile);
  command->add_option("--repeat", options->repeat, "Timed runs of each media stage, after one warm-up; the best counts")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  command->add_flag("--json", options->json, "Print the figures as JSON");
  command->add_option("-t,--threads", options->model.threads, "Worker threads; 0 uses every core")->check(CLI::Range(0, 1024));
  command->callback([options, &action] { action = [options] { return bench(*options); }; });
}

}  // namespace mxgemma::cli
