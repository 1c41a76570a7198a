#pragma once
/// Finding the data files libclip ships (model configs, vocabularies, templates).
///
///   std::string dir = clip::resource_path("configs/models");   // e.g. /usr/local/share/clip/configs/models
///
/// Searched in order: $CLIP_DATA_DIR; <libclip's folder>/../share/clip (an installed tree, or a build tree, which
/// mirrors it). The first folder holding `relative` wins; no source path is compiled into the library.
#include <string>
#include <vector>

namespace clip {

/// The folders searched, in order.
std::vector<std::string> resource_roots();

/// The absolute path of a shipped file or folder; throws clip::Error listing the folders searched when it is in
/// none of them.
std::string resource_path(const std::string& relative);

}  // namespace clip
