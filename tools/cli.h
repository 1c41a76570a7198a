#pragma once
// Command-line parsing shared by the tools (CLI11), with the project's messages: a bad flag is one line,
// "<tool>: error: --size: expected a number > 0, got '0' (<tool> --help lists every flag)", exit status 2, and the
// numeric checks say what they expect instead of CLI11's ranges over the whole double domain. Tool code.
#include <CLI/CLI.hpp>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <optional>
#include <string>
#include <vector>

namespace clip::tools {

/// Parses the command line. Returns an exit status when main should return now (0 after --help, 2 after a bad
/// flag, its message printed), nullopt when parsing succeeded:
///   if (const auto done = clip::tools::parse_flags(app, argc, argv, "clip_x")) return *done;
inline std::optional<int> parse_flags(CLI::App& app, int argc, char** argv, const char* tool) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    if (const size_t newline = what.find('\n'); newline != std::string::npos) what.resize(newline);
    std::cerr << tool << ": error: " << what << " (" << tool << " --help lists every flag)\n";
    return 2;
  }
  return std::nullopt;
}

/// Refuses an --output that is one of the inputs (the same file, by any path): writing it would destroy an input
/// before, or while, it is read.
inline void refuse_output_over_inputs(const std::string& output, const std::vector<std::string>& inputs,
                                      const char* flag = "--output") {
  std::error_code ec;
  if (!std::filesystem::exists(output, ec)) return;
  for (const std::string& input : inputs) {
    if (std::filesystem::equivalent(output, input, ec)) {
      throw std::runtime_error(std::string(flag) + " " + output + " is also an input (" + input +
                               "); write the output elsewhere");
    }
  }
}

namespace detail {
// A finite number spelled completely by `text`, or nullopt; `integer`: no fraction or exponent allowed.
inline std::optional<double> number_of(const std::string& text, bool integer) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  // Base 0 for integers: CLI11 converts them so (0x10, 010), and the check must read what it will store.
  const double v = integer ? static_cast<double>(std::strtoll(text.c_str(), &end, 0)) : std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0' || errno != 0 || !std::isfinite(v)) return std::nullopt;
  return v;
}

inline CLI::Validator number_check(double low, double high, bool low_open, bool integer, std::string expected,
                                   std::string name) {
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        const std::optional<double> v = number_of(text, integer);
        if (!v || *v < low || (low_open && *v <= low) || *v > high) return "expected " + expected + ", got '" + text + "'";
        return "";
      },
      name);
}
}  // namespace detail

/// An integer > 0.
inline CLI::Validator positive_int() {
  return detail::number_check(0, 9.2e18, true, true, "an integer > 0", "POSITIVE");
}
/// An integer >= 0.
inline CLI::Validator non_negative_int() {
  return detail::number_check(0, 9.2e18, false, true, "an integer >= 0", "NONNEGATIVE");
}
/// A finite number > 0.
inline CLI::Validator positive_number() {
  return detail::number_check(0, HUGE_VAL, true, false, "a finite number > 0", "POSITIVE");
}
/// A finite number >= 0.
inline CLI::Validator non_negative_number() {
  return detail::number_check(0, HUGE_VAL, false, false, "a finite number >= 0", "NONNEGATIVE");
}
/// A finite number.
inline CLI::Validator finite_number() {
  return detail::number_check(-HUGE_VAL, HUGE_VAL, false, false, "a finite number", "FINITE");
}
/// An integer in [low, high].
inline CLI::Validator int_range(int64_t low, int64_t high) {
  return detail::number_check(double(low), double(high), false, true,
                              "an integer from " + std::to_string(low) + " to " + std::to_string(high),
                              "[" + std::to_string(low) + " - " + std::to_string(high) + "]");
}
/// A finite number in [low, high].
inline CLI::Validator number_range(double low, double high) {
  std::ostringstream range;
  range << "[" << low << ", " << high << "]";
  return detail::number_check(low, high, false, false, "a number in " + range.str(), range.str());
}

}  // namespace clip::tools
