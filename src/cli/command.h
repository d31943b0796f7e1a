// Sub-command registry of litseg-cli.
//
// Each sub-command lives in its own cmd_*.cc file and registers itself with a static
// CommandRegistrar, so modules add commands without touching main.cc:
//
//   static litseg::cli::CommandRegistrar jf_command{
//       {"jf", "J&F of predicted masks against ground truth", RunJf}};
//
// Names may be two words ("bench decode"); main tries the two-word name first.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace litseg::cli {

// Arguments after the command name; returns the process exit status.
using CommandFn = std::function<int(const std::vector<std::string>& args)>;

struct Command {
  std::string name;
  std::string summary;
  CommandFn run;
};

std::vector<Command>& Commands();

struct CommandRegistrar {
  explicit CommandRegistrar(Command command) { Commands().push_back(std::move(command)); }
};

}  // namespace litseg::cli
