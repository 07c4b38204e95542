// mxgemma convert from the command line: the summary line, the bundle it leaves, and the exit
// codes and messages of bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/cli/cli_runner.h"

namespace {

namespace fs = std::filesystem;
using mxgemma::test::CommandResult;
using mxgemma::test::run_cli;
using mxgemma::test::scratch_dir;

const fs::path kTinySource = fs::path(MXGEMMA_FIXTURE_DIR) / "generated" / "tiny-source";

fs::path fresh(const std::string& name) {
  const fs::path path = scratch_dir() / name;
  fs::remove_all(path);
  return path;
}

TEST(ConvertCommand, WritesBundleAndSummary) {
  const fs::path dst = fresh("convert-ok");
  const CommandResult result = run_cli("convert " + kTinySource.string() + " " + dst.string() + " --rounding cpu");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "");
  EXPECT_NE(result.err.find("370 tensors, 52 quantized mxfp4, 1 shards, 1745500 bytes"), std::string::npos)
      << result.err;
  EXPECT_TRUE(fs::exists(dst / "model-00001-of-00001.safetensors"));
  EXPECT_TRUE(fs::exists(dst / "README.md"));

  const CommandResult again = run_cli("convert " + kTinySource.string() + " " + dst.string());
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("already exists; pass --force"), std::string::npos) << again.err;

  const CommandResult forced =
      run_cli("convert " + kTinySource.string() + " " + dst.string() + " --force --q-mode none --dtype bfloat16");
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_NE(forced.err.find("none quantized"), std::string::npos) << forced.err;
}

TEST(ConvertCommand, RejectsBadArguments) {
  const CommandResult missing = run_cli("convert " + (scratch_dir() / "no-such-source").string() + " " +
                                        fresh("convert-missing").string());
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("source folder not found"), std::string::npos) << missing.err;

  const CommandResult mode = run_cli("convert " + kTinySource.string() + " " +
                                     fresh("convert-mode").string() + " --q-mode int3");
  EXPECT_EQ(mode.exit_code, 2);
  EXPECT_NE(mode.err.find("--q-mode"), std::string::npos) << mode.err;

  const CommandResult shard = run_cli("convert " + kTinySource.string() + " " +
                                      fresh("convert-shard").string() + " --shard-size 12XB");
  EXPECT_EQ(shard.exit_code, 1);
  EXPECT_NE(shard.err.find("--shard-size 12XB"), std::string::npos) << shard.err;
  EXPECT_FALSE(fs::exists(scratch_dir() / "convert-shard"));
}

TEST(ConvertCommand, HelpNamesTheOptions) {
  const CommandResult help = run_cli("convert --help");
  EXPECT_EQ(help.exit_code, 0);
  for (const char* option : {"--q-mode", "--q-bits", "--q-group-size", "--rounding", "--dtype",
                             "--shard-size", "--keep-16bit", "--quantize", "--force"}) {
    EXPECT_NE(help.out.find(option), std::string::npos) << option;
  }
}

}  // namespace
