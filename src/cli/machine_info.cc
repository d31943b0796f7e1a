#include "cli/machine_info.h"

#include <ctime>
#include <fstream>
#include <thread>

#include "litseg/core/runtime.h"

namespace litseg::cli {

std::string MachineDescription() {
  std::string cpu = "unknown CPU";
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  long long mem_kb = 0;
  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);) {
    if (line.rfind("MemTotal:", 0) == 0) {
      mem_kb = std::stoll(line.substr(9));
      break;
    }
  }
  const std::string blas = BlasKernelName();
  return cpu + ", " + std::to_string(std::thread::hardware_concurrency()) + " hardware threads, " +
         std::to_string((mem_kb + 512 * 1024) / (1024 * 1024)) + " GiB RAM" +
         (blas.empty() ? std::string() : ", OpenBLAS " + blas + " kernels");
}

std::string TodayUtc() {
  const std::time_t now = std::time(nullptr);
  char buffer[16];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%d", std::gmtime(&now));
  return buffer;
}

}  // namespace litseg::cli
