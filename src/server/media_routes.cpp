// Image and audio input of the server: encoding the parts of a chat request, and
// POST /v1/audio/transcriptions.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <utility>

#include "media/audio_decode.h"
#include "server/server_impl.h"
#include "util/log.h"

namespace mxgemma::server {
namespace {

// The encoder's errors name the input (a request part) as "<name>: ...", "image '<name>': ..." or
// "audio file <name>: ...". Returns "<name>: <problem>".
std::string message_for_input(const std::string& message, const std::string& name) {
  for (const std::string& marker : {name + ": ", name + "': "}) {
    const size_t found = message.find(marker);
    if (found != std::string::npos) return name + ": " + message.substr(found + marker.size());
  }
  return name + ": " + message;
}

// Maps an encoder error to a 400 naming the part at fault, or the messages when no single part is.
[[noreturn]] void fail_encoding(const std::invalid_argument& error, const std::vector<MediaInput>& inputs) {
  const std::string message = error.what();
  if (message.find("does not fit the context size") != std::string::npos) {
    fail_invalid("messages", "context_length_exceeded", message);
  }
  for (const MediaInput& input : inputs) {
    if (input.name.empty() || (message.find(input.name + ": ") == std::string::npos &&
                               message.find(input.name + "': ") == std::string::npos)) {
      continue;
    }
    const bool no_tower = message.find(" tower") != std::string::npos;
    fail_invalid(input.name, no_tower ? "unsupported_content" : "invalid_value", message_for_input(message, input.name));
  }
  // A tower's own error ("audio tower: the clip has no frames") names no input; with one input,
  // it can only be that one.
  const bool from_tower = message.find("tower: ") != std::string::npos;
  if (from_tower && inputs.size() == 1) fail_invalid(inputs[0].name, "invalid_value", inputs[0].name + ": " + message);
  // A placeholder count that differs from the parts: the text itself contains <|image|> or <|audio|>.
  fail_invalid("messages", "invalid_value", message);
}

// ISO-639-1 codes, as OpenAI's `language` takes them, and the English names the prompt uses.
constexpr std::array<std::pair<const char*, const char*>, 40> kLanguages = {{
    {"ar", "Arabic"},     {"bn", "Bengali"},    {"ca", "Catalan"},   {"cs", "Czech"},      {"da", "Danish"},
    {"de", "German"},     {"el", "Greek"},      {"en", "English"},   {"es", "Spanish"},    {"fa", "Persian"},
    {"fi", "Finnish"},    {"fr", "French"},     {"he", "Hebrew"},    {"hi", "Hindi"},      {"hu", "Hungarian"},
    {"id", "Indonesian"}, {"it", "Italian"},    {"ja", "Japanese"},  {"ko", "Korean"},     {"ms", "Malay"},
    {"nl", "Dutch"},      {"no", "Norwegian"},  {"pl", "Polish"},    {"pt", "Portuguese"}, {"ro", "Romanian"},
    {"ru", "Russian"},    {"sk", "Slovak"},     {"sv", "Swedish"},   {"sw", "Swahili"},    {"ta", "Tamil"},
    {"te", "Telugu"},     {"th", "Thai"},       {"tl", "Tagalog"},   {"tr", "Turkish"},    {"uk", "Ukrainian"},
    {"ur", "Urdu"},       {"vi", "Vietnamese"}, {"zh", "Chinese"},   {"af", "Afrikaans"},  {"bg", "Bulgarian"},
}};

std::string language_name(const std::string& code) {
  for (const auto& [iso, name] : kLanguages) {
    if (code == iso) return name;
  }
  std::string known;
  for (const auto& [iso, name] : kLanguages) known += std::string(known.empty() ? "" : ", ") + iso;
  fail_invalid("language", "invalid_value", "invalid language: \"" + code + "\" is not an ISO-639-1 code this server knows (" + known + ")");
}

// The ASR instruction of the Gemma 4 model card (google/gemma-4-E2B-it, audio section): "Transcribe
// the following speech segment in {LANGUAGE} into {LANGUAGE} text." and two formatting rules.
// NOTE: without `language` the first sentence becomes "... in its original language.", a variant
// that public Gemma 4 clients use; the model card names a language.
std::string transcription_instruction(const std::string& language, const std::string& context) {
  std::string text = language.empty() ? "Transcribe the following speech segment in its original language."
                                      : "Transcribe the following speech segment in " + language + " into " + language + " text.";
  text +=
      "\n\nFollow these specific instructions for formatting the answer:\n"
      "* Only output the transcription, with no newlines.\n"
      "* When transcribing numbers, write the digits, i.e. write 1.7 and not one point seven, and write 3 instead of three.";
  // OpenAI's `prompt` guides spelling and style, or contains the text before this recording.
  if (!context.empty()) text += "\n* Follow the spelling and style of this text, which may precede the speech: " + context;
  return text;
}

// The transcription fields of a multipart/form-data request.
struct TranscriptionRequest {
  std::string audio;  // the uploaded file
  std::string language;
  std::string context;  // OpenAI's `prompt`
  std::optional<float> temperature;
  bool text_format = false;  // response_format "text", else "json"
};

std::string form_value(const httplib::Request& request, const char* key) {
  return request.has_file(key) ? request.get_file_value(key).content : std::string();
}

TranscriptionRequest parse_transcription_request(const httplib::Request& request) {
  if (!request.is_multipart_form_data()) {
    fail_invalid("file", "invalid_value", "the request must be multipart/form-data with the audio in a \"file\" field");
  }
  TranscriptionRequest parsed;
  if (!request.has_file("file")) fail_invalid("file", "missing_field", "invalid request: the \"file\" field is missing");
  parsed.audio = request.get_file_value("file").content;
  if (parsed.audio.empty()) fail_invalid("file", "invalid_value", "invalid file: the uploaded file is empty");

  const std::string format = form_value(request, "response_format");
  if (!format.empty() && format != "json" && format != "text") {
    fail_invalid("response_format", "invalid_value",
                 "invalid response_format: \"" + format + "\" is not supported; expected json or text");
  }
  parsed.text_format = format == "text";

  const std::string language = form_value(request, "language");
  if (!language.empty()) parsed.language = language_name(language);
  parsed.context = form_value(request, "prompt");

  const std::string temperature = form_value(request, "temperature");
  if (!temperature.empty()) {
    char* end = nullptr;
    const double value = std::strtod(temperature.c_str(), &end);
    if (end == temperature.c_str() || *end != '\0' || !(value >= 0.0 && value <= 1.0)) {
      fail_invalid("temperature", "invalid_value", "invalid temperature: \"" + temperature + "\" is not a number in [0, 1]");
    }
    parsed.temperature = float(value);
  }
  return parsed;
}

}  // namespace

MediaEncoder& Server::Impl::encoder() {
  if (!encoder_) {
    encoder_pool_ = std::make_unique<ThreadPool>(options_.media_threads);
    encoder_ = std::make_unique<MediaEncoder>(bundle_, *encoder_pool_);
  }
  return *encoder_;
}

void Server::Impl::check_queue_space() {
  if (scheduler_.queued() >= options_.scheduler.max_queued) {
    throw ApiError(503, "server_error", "server_busy", "",
                   "the server is busy: every slot is generating and the queue is full; retry after a second");
  }
}

std::shared_ptr<const MediaPrompt> Server::Impl::encode_media(const std::vector<int32_t>& prompt,
                                                              const std::vector<MediaPart>& parts) {
  if (parts.empty()) return nullptr;
  std::vector<MediaInput> inputs;
  inputs.reserve(parts.size());
  for (const MediaPart& part : parts) inputs.push_back(load_media_part(part, options_.media_sources));
  return encode_inputs(prompt, inputs);
}

std::shared_ptr<const MediaPrompt> Server::Impl::encode_inputs(const std::vector<int32_t>& prompt,
                                                               const std::vector<MediaInput>& inputs) {
  check_queue_space();
  std::lock_guard<std::mutex> lock(encoder_mutex_);
  try {
    auto media = std::make_shared<MediaPrompt>(encoder().expand(prompt, inputs, options_.scheduler.context_size));
    MXG_LOG_DEBUG("encoded %d images and %d audio clips in %.3f s", media->images, media->audio_clips, media->encode_seconds);
    return media;
  } catch (const std::invalid_argument& error) {
    fail_encoding(error, inputs);
  }
}

void Server::Impl::handle_transcription(const httplib::Request& request, httplib::Response& response) {
  const Clock::time_point received = Clock::now();
  const TranscriptionRequest transcription = parse_transcription_request(request);
  if (!bundle_.config().audio) {
    fail_invalid("file", "unsupported_content", "this model has no audio tower (its config.json has no audio_config), so it cannot transcribe");
  }

  if (transcription.audio.size() > options_.media_sources.max_bytes) {
    fail_invalid("file", "file_too_large",
                 "file: the upload is larger than the limit of " + format_bytes_limit(options_.media_sources.max_bytes) +
                     " per file (--max-media-bytes)");
  }

  // Decode the whole upload first, so that a bad file fails before any window runs.
  int sampling_rate = 0;
  int64_t window_samples = 0;
  {
    std::lock_guard<std::mutex> lock(encoder_mutex_);
    sampling_rate = encoder().audio_feature_config().sampling_rate;
    window_samples = encoder().audio_feature_config().max_length;
  }
  std::vector<float> samples;
  try {
    const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(transcription.audio.data()), transcription.audio.size());
    const DecodedAudio decoded = decode_audio_memory(bytes, "file");
    samples = resample_audio(decoded.samples, decoded.sample_rate, sampling_rate);
  } catch (const std::invalid_argument& error) {
    fail_invalid("file", "invalid_value", message_for_input(error.what(), "file"));
  }
  if (samples.empty()) fail_invalid("file", "invalid_value", "invalid file: the audio has no samples");

  // The audio tower takes at most max_length samples (30 s), so a longer clip is transcribed in
  // consecutive windows of equal length, each without the text of the others.
  const std::vector<std::vector<float>> windows = split_audio_windows(samples, size_t(window_samples));
  Json template_request = {{"add_generation_prompt", true}, {"enable_thinking", false}};
  template_request["messages"] = Json::array(
      {{{"role", "user"},
        {"content", Json::array({{{"type", "audio"}},
                                 {{"type", "text"}, {"text", transcription_instruction(transcription.language, transcription.context)}}})}}});
  const std::vector<int32_t> prompt = tokenizer_.encode(render_prompt(template_request), /*add_bos=*/false, /*parse_special=*/true);

  GenerationFields fields;
  fields.temperature = transcription.temperature.value_or(0.0f);
  const std::string id = next_id("transcription");
  std::string text;
  for (size_t index = 0; index < windows.size(); ++index) {
    MediaInput input;
    input.kind = MediaInput::Kind::audio;
    input.samples = windows[index];
    input.name = "file";
    std::shared_ptr<const MediaPrompt> media;
    try {
      media = encode_inputs(prompt, {input});
    } catch (const ApiError& error) {
      if (error.code() != "context_length_exceeded") throw;
      // A transcription has no messages: the window is what does not fit.
      fail_invalid("file", "context_length_exceeded",
                   "file: one audio window of " + std::to_string(windows[index].size() / size_t(sampling_rate)) +
                       " s and the transcription prompt do not fit the server's context; " + error.what() +
                       " (start the server with a larger --ctx-size)");
    }
    JobRequest job = make_job(media->tokens, fields, id + "-" + std::to_string(index), "file", received);
    job.media = media;
    const std::shared_ptr<JobStream> stream = submit(std::move(job));

    std::string window_text, piece;
    while (!stream->wait(piece, std::chrono::milliseconds(200))) window_text += piece;
    window_text += piece;
    if (stream->finish_reason() == JobFinish::failed) throw std::runtime_error("transcription failed: " + stream->error());
    if (stream->finish_reason() == JobFinish::timed_out) {
      throw ApiError(504, "server_error", "timeout",
                     "", "the transcription ran past the server's timeout after " + std::to_string(index) + " of " +
                             std::to_string(windows.size()) + " windows of 30 s");
    }
    // Trim the window's text and join the windows with one space.
    const size_t first = window_text.find_first_not_of(" \n\t\r");
    const size_t last = window_text.find_last_not_of(" \n\t\r");
    if (first == std::string::npos) continue;
    if (!text.empty()) text += ' ';
    text += window_text.substr(first, last - first + 1);
  }
  MXG_LOG_INFO("request %s: transcribed %.1f s of audio in %zu window%s, %zu bytes of text", id.c_str(),
               double(samples.size()) / sampling_rate, windows.size(), windows.size() == 1 ? "" : "s", text.size());

  if (transcription.text_format) {
    response.set_content(text, "text/plain; charset=utf-8");
  } else {
    send_json(response, {{"text", text}});
  }
}

}  // namespace mxgemma::server
