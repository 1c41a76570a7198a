// An image index's files table and list of unreadable files (index/file_table.h): whatever parses is written back by
// the formatter and parses again to the same rows.
#include <cstdio>
#include <cstdlib>

#include "fuzz.h"
#include "index/file_table.h"

namespace {

[[noreturn]] void mismatch(const char* what) {
  std::fprintf(stderr, "fuzz: %s did not survive format + parse unchanged\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  clip::fuzz::expect_clip_errors([&] {
    const std::vector<clip::FileRecord> records = clip::parse_records(text, "files.tsv");
    const std::vector<clip::FileRecord> again = clip::parse_records(clip::format_records(records), "again");
    if (again.size() != records.size()) mismatch("the number of records");
    for (size_t i = 0; i < records.size(); ++i) {
      const clip::FileRecord &a = records[i], &b = again[i];
      if (a.path != b.path || a.size != b.size || a.mtime_ns != b.mtime_ns || a.sha256 != b.sha256) mismatch("a record");
    }
  });
  clip::fuzz::expect_clip_errors([&] {
    const std::vector<clip::ItemError> skipped = clip::parse_skipped(text, "skipped.tsv");
    const std::vector<clip::ItemError> again = clip::parse_skipped(clip::format_skipped(skipped), "again");
    if (again.size() != skipped.size()) mismatch("the number of skipped files");
    for (size_t i = 0; i < skipped.size(); ++i) {
      if (skipped[i].path != again[i].path || skipped[i].message != again[i].message) mismatch("a skipped file");
    }
  });
  return 0;
}
