// Minimal "--key value" / "--flag" parser for litseg-cli sub-commands.
//
//   ArgParser args(argv_rest);
//   std::string gt = args.Required("--gt");
//   int frames = args.Int("--frames", 100);
//   bool mp4 = args.Flag("--mp4");
//   args.Finish();   // throws on anything left unrecognised
#pragma once

#include <set>
#include <string>
#include <vector>

namespace litseg::cli {

class ArgParser {
 public:
  explicit ArgParser(std::vector<std::string> args);

  bool Flag(const std::string& name);
  std::string String(const std::string& name, const std::string& fallback);
  std::string Required(const std::string& name);
  int Int(const std::string& name, int fallback);
  double Double(const std::string& name, double fallback);
  bool Has(const std::string& name) const;
  // Arguments that do not start with "--", in order (consumed).
  std::vector<std::string> Positional();
  // Throws litseg::Error listing any argument no call consumed.
  void Finish() const;

 private:
  const std::string* Value(const std::string& name);
  std::vector<std::string> args_;
  std::vector<bool> used_;
};

}  // namespace litseg::cli
