#pragma once
// This process's command line as a shell would take it back, for records of a run (metrics.jsonl, the training
// report). Internal.
#include <string>
#include <vector>

namespace clip {

/// `word` quoted for a POSIX shell when it needs it: "abc" stays, "a b" becomes 'a b', "it's" becomes 'it'\''s'.
std::string shell_quote(const std::string& word);

/// The arguments joined with spaces, each shell_quote()d.
std::string shell_command(const std::vector<std::string>& arguments);

/// This process's arguments, argv[0] first (Linux's /proc/self/cmdline); empty when they cannot be read.
std::vector<std::string> process_arguments();

/// process_arguments() as shell_command; "" when they cannot be read.
std::string process_command_line();

}  // namespace clip
