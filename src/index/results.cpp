#include "clip/index/results.h"

#include <cstdio>

#include "clip/util/error.h"
#include "image/thumbnail.h"
#include "util/atomic_file.h"
#include "util/csv.h"
#include "util/html.h"
#include "util/json.h"

namespace clip {
namespace {

bool csv_named(const std::string& path) {
  std::string ext = path.size() >= 4 ? path.substr(path.size() - 4) : "";
  for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".csv";
}

std::string score_text(float score) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6f", double(score));
  return text;
}

}  // namespace

std::string describe_query(const QueryResults& q) {
  if (!q.text.empty() && !q.image.empty()) return "text \"" + q.text + "\" + image " + q.image;
  return q.text.empty() ? "image " + q.image : "text \"" + q.text + "\"";
}

void write_search_results(const std::string& path, const std::vector<QueryResults>& queries) {
  if (csv_named(path)) {
    std::string csv = "query,rank,score,path\n";
    for (const QueryResults& q : queries) {
      for (size_t r = 0; r < q.hits.size(); ++r) {
        csv += csv_field(describe_query(q)) + "," + std::to_string(r + 1) + "," + score_text(q.hits[r].score) + "," +
               csv_field(q.hits[r].path) + "\n";
      }
    }
    return write_file_atomically(path, csv);
  }
  nlohmann::json j = {{"queries", nlohmann::json::array()}};
  for (const QueryResults& q : queries) {
    nlohmann::json hits = nlohmann::json::array();
    for (size_t r = 0; r < q.hits.size(); ++r) {
      hits.push_back({{"rank", r + 1}, {"path", q.hits[r].path}, {"score", q.hits[r].score}, {"row", q.hits[r].row}});
    }
    nlohmann::json entry = {{"hits", hits}};
    if (!q.text.empty()) entry["text"] = q.text;
    if (!q.image.empty()) entry["image"] = q.image;
    j["queries"].push_back(entry);
  }
  write_file_atomically(path, dump_json(j, 2) + "\n");
}

void write_duplicate_groups(const std::string& path, float threshold, const std::vector<DuplicateGroup>& groups) {
  if (csv_named(path)) {
    std::string csv = "group,score,path\n";
    for (size_t g = 0; g < groups.size(); ++g) {
      for (const IndexHit& m : groups[g].members) {
        csv += std::to_string(g + 1) + "," + score_text(m.score) + "," + csv_field(m.path) + "\n";
      }
    }
    return write_file_atomically(path, csv);
  }
  nlohmann::json j = {{"threshold", threshold}, {"groups", nlohmann::json::array()}};
  for (const DuplicateGroup& g : groups) {
    nlohmann::json members = nlohmann::json::array();
    for (const IndexHit& m : g.members) members.push_back({{"path", m.path}, {"score", m.score}, {"row", m.row}});
    j["groups"].push_back({{"size", g.members.size()}, {"members", members}});
  }
  write_file_atomically(path, dump_json(j, 2) + "\n");
}

std::vector<ResultsSection> sections_of(const std::vector<QueryResults>& queries) {
  std::vector<ResultsSection> out;
  for (const QueryResults& q : queries) out.push_back({describe_query(q), q.hits});
  return out;
}

std::vector<ResultsSection> sections_of(const std::vector<DuplicateGroup>& groups) {
  std::vector<ResultsSection> out;
  for (size_t g = 0; g < groups.size(); ++g) {
    out.push_back({"group " + std::to_string(g + 1) + " (" + std::to_string(groups[g].members.size()) + " images)",
                   groups[g].members});
  }
  return out;
}

void write_results_html(const std::string& path, const std::string& title, const std::vector<ResultsSection>& sections,
                        int thumbnail_size) {
  std::vector<std::string> paths;
  for (const ResultsSection& s : sections) {
    for (const IndexHit& h : s.hits) paths.push_back(h.path);
  }
  const std::vector<detail::Thumbnail> thumbnails = detail::jpeg_thumbnails(paths, thumbnail_size);

  const std::string t = html_escape(title);
  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>" + t + "</title><style>"
      "body{font:14px system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px}h2{font-size:16px;margin-top:28px}"
      ".grid{display:flex;flex-wrap:wrap;gap:12px}"
      ".hit{width:" + std::to_string(thumbnail_size) + "px;margin:0}"
      ".hit .img{width:" + std::to_string(thumbnail_size) + "px;height:" + std::to_string(thumbnail_size) +
      "px;display:flex;align-items:center;justify-content:center;background:#f3f3f3;border-radius:4px}"
      ".hit img{max-width:100%;max-height:100%}.hit figcaption{font-size:12px;word-break:break-all;margin-top:4px}"
      ".score{font-weight:600}.missing{color:#a00;font-size:12px;padding:8px}"
      "</style></head><body>\n<h1>" + t + "</h1>\n";
  size_t i = 0;
  for (const ResultsSection& s : sections) {
    html += "<section><h2>" + html_escape(s.title) + "</h2><div class=\"grid\">\n";
    int rank = 0;
    for (const IndexHit& h : s.hits) {
      char score[32];
      std::snprintf(score, sizeof score, "%.4f", double(h.score));
      const std::string name = html_escape(h.path);
      html += "<figure class=\"hit\"><div class=\"img\">";
      const detail::Thumbnail& t = thumbnails[i];
      html += t.jpeg.empty() ? "<span class=\"missing\">" + html_escape(t.problem) + "</span>"
                             : "<img class=\"thumb\" alt=\"" + name + "\" src=\"" + data_uri("image/jpeg", t.jpeg) + "\">";
      html += "</div><figcaption><span class=\"score\">#" + std::to_string(++rank) + " &middot; " + score +
              "</span><br>" + name + "</figcaption></figure>\n";
      ++i;
    }
    if (s.hits.empty()) html += "<p>no results</p>";
    html += "</div></section>\n";
  }
  // Tells a reader (or a test in a headless browser) how many thumbnails were actually shown.
  html +=
      "<script>window.addEventListener('load',function(){var n=0;"
      "document.querySelectorAll('img.thumb').forEach(function(i){if(i.complete&&i.naturalWidth>0)n++;});"
      "document.body.setAttribute('data-thumbnails-shown',String(n));});</script>\n</body></html>\n";
  write_file_atomically(path, html);
}

}  // namespace clip
