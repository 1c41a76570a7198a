#include "clip/data/caption_dataset.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

#include "clip/data/image_folder.h"
#include "clip/image/transform.h"
#include "clip/util/error.h"
#include "clip/text/prompts.h"
#include "util/file.h"
#include "clip/util/log.h"
#include "clip/util/utf8.h"

namespace fs = std::filesystem;

namespace clip {
namespace {

// Splits one CSV record, which may span lines when a quoted field holds newlines. Returns false at the end.
bool read_record(std::istream& in, char sep, std::vector<std::string>& fields, int64_t& line, const std::string& path) {
  fields.clear();
  std::string field;
  bool quoted = false, any = false;
  const int64_t first_line = line + 1;
  char ch;
  while (in.get(ch)) {
    any = true;
    if (quoted) {
      if (ch == '"') {
        if (in.peek() == '"') {
          field += '"';
          in.get(ch);
        } else {
          quoted = false;
        }
      } else {
        if (ch == '\n') ++line;
        field += ch;
      }
    } else if (ch == '"' && field.empty()) {
      quoted = true;
    } else if (ch == sep) {
      fields.push_back(std::move(field));
      field.clear();
    } else if (ch == '\n') {
      ++line;
      if (!field.empty() && field.back() == '\r') field.pop_back();
      fields.push_back(std::move(field));
      return true;
    } else {
      field += ch;
    }
  }
  if (quoted) fail(path, ":", first_line, ": a quoted field is not closed before the end of the file");
  if (!any) return false;
  ++line;
  if (!field.empty() && field.back() == '\r') field.pop_back();
  fields.push_back(std::move(field));
  return true;
}

}  // namespace

std::string CaptionDataset::caption(size_t index, uint64_t seed) const {
  if (!captions.empty()) return captions.at(index);
  const uint64_t pick = item_seed(seed, index) % templates.size();
  return fill_template(templates[pick], classes.at(static_cast<size_t>(labels.at(index))));
}

CaptionDataset read_caption_csv(const std::string& path, const std::string& image_key, const std::string& caption_key,
                                const std::string& separator, const std::string& caption_flag) {
  std::string sep = separator == "\\t" ? "\t" : separator;
  if (sep.size() != 1) fail("--csv-separator '", separator, "': expected one character (a tab by default)");
  require_regular_file(path, "CSV file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open the CSV");
  CaptionDataset data;
  data.source = path;
  std::vector<std::string> fields;
  int64_t line = 0;
  if (!read_record(in, sep[0], fields, line, path)) fail(path, ": empty file; a CSV needs a header row");
  auto column = [&](const std::string& key, const std::string& flag) {
    auto it = std::find(fields.begin(), fields.end(), key);
    if (it == fields.end()) {
      std::string header;
      for (const auto& f : fields) header += (header.empty() ? "" : ", ") + f;
      fail(path, ": no column '", key, "' (", flag, "); the header has: ", header,
           sep[0] == '\t' && fields.size() == 1 ? " (is the file comma-separated? set --csv-separator ,)" : "");
    }
    return static_cast<size_t>(it - fields.begin());
  };
  const size_t image_col = column(image_key, "--csv-img-key");
  const size_t caption_col = column(caption_key, caption_flag);
  const size_t width = fields.size();
  const fs::path base = fs::path(path).parent_path();
  while (read_record(in, sep[0], fields, line, path)) {
    if (fields.size() == 1 && fields[0].empty()) continue;  // blank line
    if (fields.size() != width) fail(path, ":", line, ": ", fields.size(), " fields, the header has ", width);
    fs::path image = fields[image_col];
    if (image.empty()) fail(path, ":", line, ": empty image path");
    if (image.is_relative()) image = base / image;
    if (!is_valid_utf8(fields[caption_col])) {
      data.skipped.push_back(str(path, ":", line, ": the caption is not UTF-8 (\"",
                                 utf8_or_escaped(fields[caption_col].substr(0, 60)), "\"); row skipped"));
      continue;
    }
    data.paths.push_back(image.lexically_normal().string());
    data.captions.push_back(std::move(fields[caption_col]));
  }
  if (!data.skipped.empty()) {
    log_warning(data.skipped.front(), data.skipped.size() > 1 ? str(" (and ", data.skipped.size() - 1,
                                                                     " more rows like it)") : std::string());
  }
  if (data.paths.empty()) fail(path, ": holds a header but no rows", data.skipped.empty() ? "" : " with UTF-8 captions");
  return data;
}

CaptionDataset caption_folder(const std::string& root, const std::vector<std::string>& templates,
                              const std::string& class_names) {
  if (templates.empty()) fail(root, ": no caption templates for the labeled folder");
  ImageFolder folder = scan_labeled_folder(root);
  CaptionDataset data;
  data.source = root;
  data.paths = std::move(folder.paths);
  data.labels = std::move(folder.labels);
  data.classes = class_names.empty() ? folder.classes : map_class_names(folder.classes, class_names);
  data.templates = templates;
  return data;
}

std::pair<CaptionDataset, CaptionDataset> split_dataset(const CaptionDataset& data, double fraction, uint64_t seed) {
  std::vector<size_t> order(data.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::mt19937_64 rng(seed ^ 0x5eed5eedULL);
  std::shuffle(order.begin(), order.end(), rng);
  const auto held = static_cast<size_t>(std::llround(fraction * static_cast<double>(data.size())));
  std::vector<size_t> held_out(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(held));
  std::vector<size_t> kept(order.begin() + static_cast<std::ptrdiff_t>(held), order.end());
  std::sort(held_out.begin(), held_out.end());
  std::sort(kept.begin(), kept.end());
  auto take = [&](const std::vector<size_t>& rows, const std::string& tag) {
    CaptionDataset out;
    out.source = data.source + tag;
    out.classes = data.classes;
    out.templates = data.templates;
    for (size_t r : rows) {
      out.paths.push_back(data.paths[r]);
      if (!data.captions.empty()) out.captions.push_back(data.captions[r]);
      if (!data.labels.empty()) out.labels.push_back(data.labels[r]);
    }
    return out;
  };
  return {take(kept, ""), take(held_out, " (held out)")};
}

}  // namespace clip
