#include "cli/args.h"

#include <stdexcept>

#include "litseg/core/error.h"

namespace litseg::cli {

ArgParser::ArgParser(std::vector<std::string> args)
    : args_(std::move(args)), used_(args_.size(), false) {}

bool ArgParser::Has(const std::string& name) const {
  for (const auto& a : args_)
    if (a == name) return true;
  return false;
}

bool ArgParser::Flag(const std::string& name) {
  for (size_t i = 0; i < args_.size(); ++i) {
    if (!used_[i] && args_[i] == name) {
      used_[i] = true;
      return true;
    }
  }
  return false;
}

const std::string* ArgParser::Value(const std::string& name) {
  for (size_t i = 0; i < args_.size(); ++i) {
    if (used_[i] || args_[i] != name) continue;
    if (i + 1 >= args_.size()) throw Error("option " + name + " needs a value");
    used_[i] = used_[i + 1] = true;
    return &args_[i + 1];
  }
  return nullptr;
}

std::string ArgParser::String(const std::string& name, const std::string& fallback) {
  const std::string* v = Value(name);
  return v ? *v : fallback;
}

std::string ArgParser::Required(const std::string& name) {
  const std::string* v = Value(name);
  if (!v) throw Error("missing required option " + name);
  return *v;
}

int ArgParser::Int(const std::string& name, int fallback) {
  const std::string* v = Value(name);
  if (!v) return fallback;
  try {
    size_t end = 0;
    int value = std::stoi(*v, &end);
    if (end != v->size()) throw std::invalid_argument(*v);
    return value;
  } catch (const std::exception&) {
    throw Error("option " + name + " expects an integer, got '" + *v + "'");
  }
}

double ArgParser::Double(const std::string& name, double fallback) {
  const std::string* v = Value(name);
  if (!v) return fallback;
  try {
    size_t end = 0;
    double value = std::stod(*v, &end);
    if (end != v->size()) throw std::invalid_argument(*v);
    return value;
  } catch (const std::exception&) {
    throw Error("option " + name + " expects a number, got '" + *v + "'");
  }
}

std::vector<std::string> ArgParser::Positional() {
  std::vector<std::string> out;
  for (size_t i = 0; i < args_.size(); ++i) {
    if (used_[i] || args_[i].rfind("--", 0) == 0) continue;
    used_[i] = true;
    out.push_back(args_[i]);
  }
  return out;
}

void ArgParser::Finish() const {
  std::string unknown;
  for (size_t i = 0; i < args_.size(); ++i)
    if (!used_[i]) unknown += (unknown.empty() ? "" : " ") + args_[i];
  if (!unknown.empty()) throw Error("unrecognised arguments: " + unknown);
}

}  // namespace litseg::cli
