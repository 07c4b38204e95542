// Runs the mxgemma binary from the CLI tests: stdin from a string, stdout and stderr captured apart.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

namespace mxgemma::test {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// A folder of this test process for inputs and captured output.
inline std::filesystem::path scratch_dir() {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("mxgemma_cli_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

inline std::filesystem::path write_scratch(const std::string& name, const std::string& text) {
  const std::filesystem::path path = scratch_dir() / name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// Runs `mxgemma ARGUMENTS` through the shell with `stdin_text` as its input and stderr redirected
// to a file, so both streams can be checked.
inline CommandResult run_cli(const std::string& arguments, const std::string& stdin_text = "") {
  const std::filesystem::path input = write_scratch("stdin.txt", stdin_text);
  const std::filesystem::path errors = scratch_dir() / "stderr.txt";
  const std::string command =
      std::string(MXGEMMA_CLI_PATH) + " " + arguments + " < " + input.string() + " 2> " + errors.string();
  CommandResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer{};
  size_t read = 0;
  while ((read = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.out.append(buffer.data(), read);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream error_stream(errors);
  result.err.assign(std::istreambuf_iterator<char>(error_stream), std::istreambuf_iterator<char>());
  return result;
}

// The tiny fixture bundle in the layout of the Osaurus converter.
inline std::string tiny_bundle() {
  const std::filesystem::path dir = std::filesystem::path(MXGEMMA_FIXTURE_DIR) / "generated" / "tiny-hf";
  if (!std::filesystem::exists(dir / "config.json")) {
    throw std::runtime_error("fixture missing: " + dir.string() + ": run scripts/make_fixtures.sh");
  }
  return dir.string();
}

}  // namespace mxgemma::test
