#pragma once
/// Finding images on disk: labeled folders (one subfolder per class) and plain folders.
///
///   clip::ImageFolder folder = clip::scan_labeled_folder("val/");   // classes = sorted subfolder names
///   for (size_t i = 0; i < folder.paths.size(); ++i) use(folder.paths[i], folder.labels[i]);
///
/// Hidden files and folders (a leading '.') and files without an image extension are skipped; order is sorted
/// by path, so every run sees the same list.
#include <cstdint>
#include <string>
#include <vector>

namespace clip {

/// Images and, in a labeled folder, their class.
struct ImageFolder {
  std::string root;
  std::vector<std::string> classes;  ///< sorted subfolder names (labeled); empty otherwise
  std::vector<std::string> paths;    ///< sorted
  std::vector<int64_t> labels;       ///< index into classes per path (labeled); empty otherwise
};

/// True for the extensions libclip decodes (.jpg .jpeg .png .bmp .webp .tif .tiff .ppm .pgm .pbm), any case.
bool has_image_extension(const std::string& path);

/// Every image under `root`, recursively. Throws clip::Error when `root` is not a folder or holds no image.
ImageFolder scan_images(const std::string& root);

/// A labeled folder: each non-hidden subfolder of `root` is a class; its images (recursively) are its
/// samples. Throws clip::Error when `root` has no subfolder or no image at all.
ImageFolder scan_labeled_folder(const std::string& root);

/// True when `root` holds at least one non-hidden subfolder and no image directly inside it.
bool looks_labeled(const std::string& root);

}  // namespace clip
