#pragma once
/// Search results and near-duplicate groups written out: JSON or CSV (by the file's extension) for programs, and one
/// self-contained HTML page for people, thumbnails embedded as JPEG data URIs (no network, no external files).
///
///   std::vector<clip::QueryResults> results{{"dog on a beach", "", hits[0]}};
///   clip::write_search_results("hits.json", results);        // {"queries": [{"text", "hits": [{rank, path, score, row}]}]}
///   clip::write_results_html("hits.html", "photos", clip::sections_of(results));
///
/// The HTML page marks itself once loaded: `<body data-thumbnails-shown="N">` counts the thumbnails actually shown
/// (a reader, or a test in a headless browser, can check it); a file whose thumbnail cannot be made shows why.
#include <string>
#include <vector>

#include "clip/index/image_index.h"

namespace clip {

/// One query's results.
struct QueryResults {
  std::string text;   ///< the text query (empty: none)
  std::string image;  ///< the image query's file (empty: none)
  std::vector<IndexHit> hits;
};

/// "text \"...\"", "image F" or both joined with " + ".
std::string describe_query(const QueryResults& query);

/// .csv (query, rank, score, path) or otherwise JSON ({"queries": [{"text", "image", "hits": [...]}]}); written
/// atomically.
void write_search_results(const std::string& path, const std::vector<QueryResults>& queries);

/// .csv (group, score, path) or otherwise JSON ({"threshold", "groups": [{"size", "members": [...]}]}).
void write_duplicate_groups(const std::string& path, float threshold, const std::vector<DuplicateGroup>& groups);

/// One block of an HTML page: a heading and its images.
struct ResultsSection {
  std::string title;
  std::vector<IndexHit> hits;
};

std::vector<ResultsSection> sections_of(const std::vector<QueryResults>& queries);
std::vector<ResultsSection> sections_of(const std::vector<DuplicateGroup>& groups);

/// Writes the page atomically. `thumbnail_size`: the longer side of each thumbnail, in pixels.
void write_results_html(const std::string& path, const std::string& title, const std::vector<ResultsSection>& sections,
                        int thumbnail_size = 192);

}  // namespace clip
