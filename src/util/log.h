// Diagnostics go to stderr, one line per event; program output stays on stdout.
#pragma once

#include <cstdarg>

namespace mxgemma {

enum class LogLevel { debug, info, warning, error };

// Lines below this level are dropped; the CLI lowers it to debug with --verbose.
void set_log_level(LogLevel level);
LogLevel log_level();

void log_message(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

}  // namespace mxgemma

#define MXG_LOG_DEBUG(...)                                                              \
  do {                                                                                  \
    if (::mxgemma::log_level() <= ::mxgemma::LogLevel::debug)                           \
      ::mxgemma::log_message(::mxgemma::LogLevel::debug, __VA_ARGS__);                  \
  } while (0)
#define MXG_LOG_INFO(...) ::mxgemma::log_message(::mxgemma::LogLevel::info, __VA_ARGS__)
#define MXG_LOG_WARN(...) ::mxgemma::log_message(::mxgemma::LogLevel::warning, __VA_ARGS__)
#define MXG_LOG_ERROR(...) ::mxgemma::log_message(::mxgemma::LogLevel::error, __VA_ARGS__)
