// main() of every test program: the same BLAS kernel selection as litseg and litseg-cli
// (core/runtime.h), so tests measure the numbers the programs produce.
#include <gtest/gtest.h>

#include "litseg/core/runtime.h"

int main(int argc, char** argv) {
  litseg::SelectBlasKernels(argv);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
