#pragma once
/// Prompt templates and class names for zero-shot classification.
///
///   clip::PromptSet set = clip::load_prompt_set("openai_imagenet");   // configs/templates/openai_imagenet.json
///   std::string prompt = clip::fill_template(set.templates[0], "goldfish");   // "a bad photo of a goldfish."
///
/// A prompt set is a name of a file in configs/templates (openai_imagenet, simple, and the paper's datasets:
/// CIFAR10, Food101, ...), or a user file: a JSON list of templates, a JSON object {"templates": [...],
/// "classes": [...]}, or plain text with one template a line. Every template must contain "{}".
#include <string>
#include <vector>

namespace clip {

/// Templates and, when the set defines them, its class names.
struct PromptSet {
  std::vector<std::string> templates;
  std::vector<std::string> classes;
  std::string source;  ///< the file it came from
};

/// Reads a named set or a file; throws clip::Error naming the file and the first template without "{}".
PromptSet load_prompt_set(const std::string& name_or_path);

/// The names of the shipped sets (configs/templates/*.json), sorted.
std::vector<std::string> prompt_set_names();

/// The template with every "{}" replaced by the class name (Python's str.format for these templates).
std::string fill_template(const std::string& templ, const std::string& class_name);

/// Class names from a file: one a line (blank lines skipped), or a JSON list.
std::vector<std::string> read_class_names(const std::string& path);

/// "a,b,c" -> {"a", "b", "c"} (spaces around names trimmed; empty names are an error).
std::vector<std::string> parse_class_list(const std::string& list);

/// Display names for a labeled folder's class folders from a names file: `folder<TAB>name` lines, a JSON
/// object {folder: name}, or a list of names in the folders' sorted order (an ImageNet names file with the
/// standard validation folder). Every folder must get a name.
std::vector<std::string> map_class_names(const std::vector<std::string>& folders, const std::string& names_file);

}  // namespace clip
