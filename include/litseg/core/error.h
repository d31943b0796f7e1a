// The one exception type litseg throws for bad input and failed operations.
//
// Errors carry a message written for the user ("frame folder has a gap: 00012.jpg is
// missing between 00011.jpg and 00013.jpg"), never a bare errno or an assertion text.
// Library code throws litseg::Error; the GUI and CLI catch it at their boundary and show
// the message. Programming errors (violated preconditions) may still use assertions.
#pragma once

#include <stdexcept>
#include <string>

namespace litseg {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace litseg
