#pragma once
/// Image-caption pairs for training and retrieval evaluation.
///
///   clip::CaptionDataset data = clip::read_caption_csv("train.csv", "filepath", "title", "\t");
///   clip::CaptionDataset folder = clip::caption_folder("train/", clip::load_prompt_set("simple").templates);
///   auto [train, val] = clip::split_dataset(data, 0.05, /*seed=*/0);
///
/// A CSV/TSV (open_clip's --csv-img-key/--csv-caption-key/--csv-separator) gives one caption per image; a
/// labeled folder gives captions made from its class names and caption templates, one template drawn per sample
/// and epoch from a seed. Relative image paths resolve against the CSV's folder.
#include <cstdint>
#include <string>
#include <vector>

namespace clip {

/// Images with captions (or class labels from which captions are made).
struct CaptionDataset {
  std::string source;
  std::vector<std::string> paths;
  std::vector<std::string> captions;  ///< per image (CSV)
  std::vector<int64_t> labels;        ///< per image (labeled folder)
  std::vector<std::string> classes;   ///< display names (labeled folder)
  std::vector<std::string> templates; ///< caption templates (labeled folder)
  std::vector<std::string> skipped;   ///< rows left out, one line each naming file and line (a caption not UTF-8)

  size_t size() const { return paths.size(); }
  /// The caption of sample `index`; for a labeled folder, the template is drawn from (seed, index).
  std::string caption(size_t index, uint64_t seed) const;
};

/// Reads a CSV/TSV with a header row (RFC 4180 quoting). Errors name the file, the line and the missing column
/// (with the flag that names it: `caption_flag` for the second column, which a labeled list uses for its labels). A
/// row whose caption is not UTF-8 is left out, listed in `skipped` and logged (clip/util/log.h), like an
/// unreadable image: one bad row does not stop a job.
CaptionDataset read_caption_csv(const std::string& path, const std::string& image_key, const std::string& caption_key,
                                const std::string& separator, const std::string& caption_flag = "--csv-caption-key");

/// A labeled folder (scan_labeled_folder) with caption templates; `class_names` (optional) maps subfolders to
/// display names (map_class_names).
CaptionDataset caption_folder(const std::string& root, const std::vector<std::string>& templates,
                              const std::string& class_names = "");

/// Holds out round(fraction * size) samples, chosen by a seeded shuffle: {train, held out}.
std::pair<CaptionDataset, CaptionDataset> split_dataset(const CaptionDataset& data, double fraction, uint64_t seed);

}  // namespace clip
