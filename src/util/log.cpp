#include "util/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace mxgemma {
namespace {

std::atomic<LogLevel> g_level{LogLevel::info};
std::mutex g_mutex;

const char* level_tag(LogLevel level) {
  switch (level) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warning: return "warning";
    case LogLevel::error: return "error";
  }
  return "";
}

}  // namespace

void set_log_level(LogLevel level) { g_level = level; }
LogLevel log_level() { return g_level; }

void log_message(LogLevel level, const char* format, ...) {
  if (level < g_level) return;
  char line[2048];
  va_list args;
  va_start(args, format);
  std::vsnprintf(line, sizeof line, format, args);
  va_end(args);
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "mxgemma %s: %s\n", level_tag(level), line);
}

}  // namespace mxgemma
