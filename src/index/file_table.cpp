// The files table of an image index and its list of unreadable files: tab-separated text, escaped, parsed strictly.
#include "index/file_table.h"

#include <sys/stat.h>

#include <algorithm>
#include <limits>

#include "clip/util/error.h"

namespace clip {
namespace {

constexpr const char* kTableHeader = "path\tsize\tmtime_ns\tsha256";
constexpr const char* kSkippedHeader = "path\tmessage";

std::string escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += c;
    }
  }
  return out;
}

bool unescape(const std::string& s, std::string& out) {
  out.clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out += s[i];
      continue;
    }
    if (++i == s.size()) return false;
    switch (s[i]) {
      case '\\': out += '\\'; break;
      case 't': out += '\t'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      default: return false;
    }
  }
  return true;
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t tab = line.find('\t', start);
    out.push_back(line.substr(start, tab - start));
    if (tab == std::string::npos) return out;
    start = tab + 1;
  }
}

bool parse_int(const std::string& s, int64_t& out) {
  const bool negative = !s.empty() && s[0] == '-';
  size_t i = negative ? 1 : 0;
  if (i == s.size()) return false;
  int64_t v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    const int digit = s[i] - '0';
    if (v > (std::numeric_limits<int64_t>::max() - digit) / 10) return false;
    v = v * 10 + digit;
  }
  out = negative ? -v : v;
  return true;
}

bool is_sha256_hex(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Lines of `text` after its header, which must be `header`.
template <typename Row>
void for_each_line(const std::string& text, const std::string& header, const std::string& source, Row row) {
  size_t start = 0;
  int64_t line_number = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) fail(source, ": line ", line_number + 1, " is cut short (no newline at the end)");
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    if (++line_number == 1) {
      if (line != header) fail(source, ": line 1 is not the table's header ('", header, "')");
      continue;
    }
    row(line, line_number);
  }
  if (line_number == 0) fail(source, ": is empty (no header line)");
}

}  // namespace

std::optional<std::pair<int64_t, int64_t>> stat_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return std::make_pair(int64_t(st.st_size), int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec);
}

std::string format_records(const std::vector<FileRecord>& records) {
  std::string out = std::string(kTableHeader) + "\n";
  for (const FileRecord& r : records) {
    out += escape(r.path) + "\t" + std::to_string(r.size) + "\t" + std::to_string(r.mtime_ns) + "\t" + r.sha256 + "\n";
  }
  return out;
}

std::vector<FileRecord> parse_records(const std::string& text, const std::string& source) {
  std::vector<FileRecord> out;
  for_each_line(text, kTableHeader, source, [&](const std::string& line, int64_t n) {
    const std::vector<std::string> cells = split_tabs(line);
    FileRecord r;
    if (cells.size() != 4 || !unescape(cells[0], r.path) || r.path.empty() || !parse_int(cells[1], r.size) ||
        !parse_int(cells[2], r.mtime_ns) || !is_sha256_hex(cells[3])) {
      fail(source, ": line ", n, " is not 'path<TAB>size<TAB>mtime_ns<TAB>sha256'; the table is damaged");
    }
    r.sha256 = cells[3];
    out.push_back(std::move(r));
  });
  return out;
}

std::string bytes_to_hex(const std::string& bytes) {
  static const char* const kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    out += kDigits[static_cast<unsigned char>(c) >> 4];
    out += kDigits[static_cast<unsigned char>(c) & 15];
  }
  return out;
}

bool hex_to_bytes(const std::string& hex, std::string& bytes) {
  if (hex.size() % 2 != 0) return false;
  const auto digit = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
  bytes.clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = digit(hex[i]), lo = digit(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    bytes += char(hi * 16 + lo);
  }
  return true;
}

std::string format_skipped(const std::vector<ItemError>& skipped) {
  std::string out = std::string(kSkippedHeader) + "\n";
  for (const ItemError& e : skipped) out += escape(e.path) + "\t" + escape(e.message) + "\n";
  return out;
}

std::vector<ItemError> parse_skipped(const std::string& text, const std::string& source) {
  std::vector<ItemError> out;
  for_each_line(text, kSkippedHeader, source, [&](const std::string& line, int64_t n) {
    const std::vector<std::string> cells = split_tabs(line);
    ItemError e;
    if (cells.size() != 2 || !unescape(cells[0], e.path) || !unescape(cells[1], e.message)) {
      fail(source, ": line ", n, " is not 'path<TAB>message'; the table is damaged");
    }
    e.index = int64_t(out.size());
    out.push_back(std::move(e));
  });
  return out;
}

}  // namespace clip
