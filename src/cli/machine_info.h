// One-line description of the machine for benchmark reports.
#pragma once

#include <string>

namespace litseg::cli {

// "Intel(R) Xeon(R) ... , 2 hardware threads, 24 GiB" from /proc/cpuinfo and /proc/meminfo.
std::string MachineDescription();
// Today's date as YYYY-MM-DD (UTC).
std::string TodayUtc();

}  // namespace litseg::cli
