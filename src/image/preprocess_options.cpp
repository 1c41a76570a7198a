#include "clip/image/preprocess_options.h"

#include "clip/util/error.h"

namespace clip {

ResizeMode parse_resize_mode(const std::string& name, const std::string& source) {
  if (name == "shortest") return ResizeMode::shortest;
  if (name == "longest") return ResizeMode::longest;
  if (name == "squash") return ResizeMode::squash;
  fail(source, ": unknown resize mode '", name, "' (expected shortest, longest or squash)");
}

Filter parse_interpolation(const std::string& name, const std::string& source) {
  if (name == "bicubic") return Filter::bicubic;
  if (name == "bilinear") return Filter::bilinear;
  fail(source, ": unknown interpolation '", name, "' (expected bicubic or bilinear)");
}

const char* resize_mode_name(ResizeMode mode) {
  switch (mode) {
    case ResizeMode::shortest:
      return "shortest";
    case ResizeMode::longest:
      return "longest";
    case ResizeMode::squash:
      return "squash";
  }
  return "?";
}

const char* interpolation_name(Filter filter) {
  switch (filter) {
    case Filter::bicubic:
      return "bicubic";
    case Filter::bilinear:
      return "bilinear";
    case Filter::nearest:
      return "nearest";
  }
  return "?";
}

}  // namespace clip
