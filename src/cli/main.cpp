#include <cstdio>

int main(int argc, char** argv) {
  std::fprintf(stderr, "mxgemma: no subcommands are built yet\n");
  return 2;
}
