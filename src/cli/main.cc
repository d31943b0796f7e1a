// litseg-cli: the headless client of litseg (evaluation, synthesis, parity, benchmarks).
//
// Usage: litseg-cli [--threads N] <command> [options]
// Each command registers itself (command.h); `litseg-cli help` lists them.

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <ATen/Parallel.h>

#include "cli/command.h"
#include "litseg/core/error.h"
#include "litseg/core/runtime.h"

namespace litseg::cli {

std::vector<Command>& Commands() {
  static std::vector<Command> commands;
  return commands;
}

namespace {

void PrintUsage() {
  std::cout << "usage: litseg-cli [--threads N] <command> [options]\n\ncommands:\n";
  auto commands = Commands();
  std::sort(commands.begin(), commands.end(),
            [](const Command& a, const Command& b) { return a.name < b.name; });
  for (const auto& c : commands) {
    std::string padded = c.name;
    padded.resize(std::max<size_t>(padded.size() + 2, 18), ' ');
    std::cout << "  " << padded << c.summary << "\n";
  }
  std::cout << "\n--threads N   compute threads (default: all " << std::thread::hardware_concurrency()
            << " cores)\n";
}

const Command* Find(const std::string& name) {
  for (const auto& c : Commands())
    if (c.name == name) return &c;
  return nullptr;
}

}  // namespace
}  // namespace litseg::cli

int main(int argc, char** argv) {
  using namespace litseg::cli;
  litseg::SelectBlasKernels(argv);  // may restart the process once (see runtime.h)
  std::vector<std::string> args(argv + 1, argv + argc);

  litseg::RuntimeOptions runtime;
  // Global options come before the command name.
  while (!args.empty() && args[0].rfind("--", 0) == 0) {
    if (args[0] == "--threads" && args.size() >= 2) {
      try {
        runtime.threads = std::stoi(args[1]);
      } catch (const std::exception&) {
        std::cerr << "litseg-cli: --threads expects an integer\n";
        return 2;
      }
      args.erase(args.begin(), args.begin() + 2);
    } else if (args[0] == "--help" || args[0] == "-h") {
      PrintUsage();
      return 0;
    } else {
      break;
    }
  }
  if (args.empty() || args[0] == "help") {
    PrintUsage();
    return args.empty() ? 2 : 0;
  }

  const Command* command = nullptr;
  size_t consumed = 0;
  if (args.size() >= 2 && (command = Find(args[0] + " " + args[1]))) {
    consumed = 2;
  } else if ((command = Find(args[0]))) {
    consumed = 1;
  } else {
    std::cerr << "litseg-cli: unknown command '" << args[0] << "' (see litseg-cli help)\n";
    return 2;
  }

  try {
    litseg::RegisterThreadCountSetter([](int threads) { at::set_num_threads(threads); });
    litseg::ConfigureRuntime(runtime);
    return command->run(std::vector<std::string>(args.begin() + consumed, args.end()));
  } catch (const litseg::Error& e) {
    std::cerr << "litseg-cli " << command->name << ": " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "litseg-cli " << command->name << ": unexpected error: " << e.what() << "\n";
    return 3;
  }
}
