// Fetching hub files into the cache with libcurl, as huggingface_hub's file_download does: HEAD the resolve URL for
// the commit, etag and size (following only relative redirects: renamed repos), download from where it points (an
// LFS file's CDN), resume partial downloads with a range, verify, move into blobs/, link from snapshots/.
#include <curl/curl.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "clip/io/hf_hub.h"
#include "clip/util/error.h"
#include "clip/util/log.h"
#include "clip/util/progress.h"
#include "clip/util/sha256.h"
#include "io/hf_hub_cache.h"
#include "util/atomic_file.h"

namespace fs = std::filesystem;

namespace clip {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct ListDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
struct FileDeleter {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

struct Response {
  CURLcode code = CURLE_OK;
  std::string error;                           // curl's message when code != CURLE_OK
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names, of the last response of a redirect chain
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* r = static_cast<Response*>(user);
  std::string line(data, size * count);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {
    r->headers.clear();  // a new response (after a redirect or a 100 Continue)
  } else if (const size_t colon = line.find(':'); colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t start = colon + 1;
    while (start < line.size() && line[start] == ' ') ++start;
    r->headers[name] = line.substr(start);
  }
  return size * count;
}

std::string header(const Response& r, const char* name) {
  const auto it = r.headers.find(name);
  return it == r.headers.end() ? "" : it->second;
}

// An ETag as the cache names blobs: without W/ and quotes.
std::string etag_of(std::string value) {
  if (value.rfind("W/", 0) == 0) value = value.substr(2);
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
  return value;
}

bool is_sha256(const std::string& s) {
  if (s.size() != 64) return false;
  for (const char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string escape_path(const std::string& path, bool keep_slash = true) {
  std::string out;
  for (const char c : path) {
    if (std::isalnum(static_cast<unsigned char>(c)) || (c == '/' && keep_slash) || c == '-' || c == '_' || c == '.' ||
        c == '~') {
      out += c;
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
      out += buf;
    }
  }
  return out;
}

// scheme://host[:port] of a URL, for relative redirects.
std::string origin_of(const std::string& url) {
  const size_t scheme = url.find("://");
  const size_t path = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  return path == std::string::npos ? url : url.substr(0, path);
}

class Request {
 public:
  Request(const std::string& url, const HubOptions& o) : handle_(curl_easy_init()) {
    if (!handle_) fail("libcurl: cannot create a handle");
    CURL* h = handle_.get();
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &response_);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    // A stalled transfer (under 1 byte/s for 30 s) ends as a dropped one: retried, resumed.
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "libclip (huggingface_hub-compatible)");
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_slist* list = curl_slist_append(nullptr, "Accept-Encoding: identity");  // sizes and hashes of the bytes
    // The token goes to the hub only, never to the CDN an LFS file redirects to (as huggingface_hub).
    if (!o.token.empty() && origin_of(url) == origin_of(o.endpoint)) {
      list = curl_slist_append(list, ("Authorization: Bearer " + o.token).c_str());
    }
    headers_.reset(list);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
  }

  CURL* get() { return handle_.get(); }

  Response perform() {
    error_[0] = '\0';
    response_.code = curl_easy_perform(handle_.get());
    curl_easy_getinfo(handle_.get(), CURLINFO_RESPONSE_CODE, &response_.status);
    if (response_.code != CURLE_OK) {
      response_.error = error_[0] != '\0' ? std::string(error_) : curl_easy_strerror(response_.code);
    }
    return response_;
  }

 private:
  std::unique_ptr<CURL, CurlDeleter> handle_;
  std::unique_ptr<curl_slist, ListDeleter> headers_;
  Response response_;
  char error_[CURL_ERROR_SIZE] = {};
};

// A non-negative decimal header value, or -1.
int64_t parse_size(const std::string& text) {
  if (text.empty() || text.size() > 18) return -1;
  int64_t value = 0;
  for (const char c : text) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return -1;
    value = value * 10 + (c - '0');
  }
  return value;
}

struct Metadata {
  std::string commit, etag, download_url;
  int64_t size = -1;
};

// What the hub says of a file; nullopt when the repo has no such file. Throws for every other answer.
std::optional<Metadata> file_metadata(const std::string& repo, const std::string& file, const HubOptions& o,
                                      bool& unreachable, std::string& unreachable_why) {
  std::string url = o.endpoint + "/" + repo + "/resolve/" + escape_path(o.revision, /*keep_slash=*/false) + "/" +
                    escape_path(file);
  Response r;
  for (int redirects = 0;; ++redirects) {
    Request request(url, o);
    curl_easy_setopt(request.get(), CURLOPT_NOBODY, 1L);
    r = request.perform();
    if (r.code != CURLE_OK) {
      unreachable = true;
      unreachable_why = r.error;
      return std::nullopt;
    }
    const std::string location = header(r, "location");
    // huggingface_hub follows relative redirects only (a renamed repo); an absolute one is where the file is.
    if (r.status >= 300 && r.status < 400 && !location.empty() && location.front() == '/' && redirects < 10) {
      url = origin_of(o.endpoint) + location;
      continue;
    }
    break;
  }
  const std::string code = header(r, "x-error-code");
  const std::string where = repo + " (" + o.endpoint + ")";
  if (r.status >= 500 || r.status == 429) {  // the hub is down or busy: the cached file will do, as in Python
    unreachable = true;
    unreachable_why = "HTTP " + std::to_string(r.status);
    return std::nullopt;
  }
  if (code == "EntryNotFound" || (r.status == 404 && code.empty())) return std::nullopt;
  if (code == "GatedRepo") {
    fail(where, " is gated: ", o.token.empty() ? "accept its conditions on the hub, then set HF_TOKEN to a token of that account"
                                              : "the account of HF_TOKEN has not been granted access; accept the conditions on the hub");
  }
  if (code == "RepoNotFound") {
    fail(where, ": no such repo", o.token.empty() ? " (or it is private: set HF_TOKEN)" : " that HF_TOKEN can see");
  }
  if (code == "RevisionNotFound") fail(where, ": no revision '", o.revision, "'");
  if (r.status == 401 || r.status == 403) fail(where, ": access refused (HTTP ", r.status, "); check HF_TOKEN");
  if (r.status >= 400) fail(where, ": ", file, ": the hub answered HTTP ", r.status, code.empty() ? "" : " (" + code + ")");
  Metadata m;
  m.commit = header(r, "x-repo-commit");
  m.etag = etag_of(header(r, "x-linked-etag").empty() ? header(r, "etag") : header(r, "x-linked-etag"));
  // The size: X-Linked-Size for LFS files (the answer itself is a redirect), else the 200's Content-Length.
  const std::string linked = header(r, "x-linked-size");
  m.size = parse_size(!linked.empty() ? linked : r.status < 300 ? header(r, "content-length") : "");
  m.download_url = r.status >= 300 && r.status < 400 && !header(r, "location").empty() ? header(r, "location") : url;
  if (!detail::is_commit_hash(m.commit) || m.etag.empty() || m.etag.find('/') != std::string::npos) {
    fail(where, ": ", file, ": the answer lacks the hub's headers (X-Repo-Commit, ETag); is ", o.endpoint,
         " a Hugging Face hub? (HF_ENDPOINT)");
  }
  return m;
}

// An exclusive lock on a file (flock), released when it goes: one download of a blob at a time, across processes
// (several ranks starting together) as huggingface_hub's .locks/ do.
class FileLock {
 public:
  explicit FileLock(const fs::path& path) {
    fs::create_directories(path.parent_path());
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0664);  // a cache shared by a group, as Python's
    if (fd_ < 0) fail(path.string(), ": cannot create the download lock");
    int rc;
    while ((rc = ::flock(fd_, LOCK_EX)) != 0 && errno == EINTR) {
    }
    if (rc != 0) {
      const int error = errno;
      ::close(fd_);
      fd_ = -1;
      fail(path.string(), ": cannot lock it (", std::strerror(error), "); the cache's file system must support flock");
    }
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

struct Transfer {
  std::FILE* file;
  const std::function<void(int64_t, int64_t)>* progress;
  int64_t start, total;
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  return std::fwrite(data, size, count, t->file) * size;
}

int on_progress(void* user, curl_off_t, curl_off_t now, curl_off_t, curl_off_t) {
  const auto* t = static_cast<const Transfer*>(user);
  if (*t->progress) (*t->progress)(t->start + static_cast<int64_t>(now), t->total);
  return 0;
}

// Downloads `m` into `incomplete`, resuming what is there; returns when the file has m.size bytes (or the server
// ended a response of unknown size). Throws after options.attempts dropped connections.
void download(const Metadata& m, const fs::path& incomplete, const std::string& label, const HubOptions& o) {
  std::unique_ptr<Progress> bar;
  int64_t shown = 0;
  std::function<void(int64_t, int64_t)> progress = [&](int64_t done, int64_t total) {
    if (o.progress) return o.progress(label, done, total);
    if (total < (int64_t(10) << 20)) return;
    if (!bar) bar = std::make_unique<Progress>("download " + label, total >> 20, "MB");
    if ((done >> 20) > shown) {
      bar->advance((done >> 20) - shown);
      shown = done >> 20;
    }
  };
  std::string last_error;
  bool complete = false;
  for (int attempt = 1; attempt <= std::max(1, o.attempts); ++attempt) {
    std::error_code ec;
    const int64_t have = fs::exists(incomplete, ec) ? static_cast<int64_t>(fs::file_size(incomplete, ec)) : 0;
    if (m.size >= 0 && have == m.size) {
      complete = true;
      break;
    }
    std::unique_ptr<std::FILE, FileDeleter> out(std::fopen(incomplete.c_str(), have > 0 ? "ab" : "wb"));
    if (!out) fail(incomplete.string(), ": cannot write the download (", std::strerror(errno), ")");
    Transfer transfer{out.get(), &progress, have, m.size};
    Request request(m.download_url, o);
    CURL* h = request.get();
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);  // the CDN; curl drops Authorization on another host
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);     // an error page is never written into the file
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &transfer);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &transfer);
    const std::string range = std::to_string(have) + "-";
    if (have > 0) curl_easy_setopt(h, CURLOPT_RANGE, range.c_str());
    const Response r = request.perform();
    out.reset();
    if (have > 0 && r.status == 200) {
      // The server ignored the range and sent the whole file after what we had: start again from nothing.
      fs::remove(incomplete, ec);
      last_error = "the server does not resume (HTTP 200 to a range request)";
      continue;
    }
    if (r.status == 416) {  // what we have is no prefix of the file: start again
      fs::remove(incomplete, ec);
      last_error = "HTTP 416 for the resumed range";
      continue;
    }
    if (r.code == CURLE_HTTP_RETURNED_ERROR) fail("download ", label, ": the server answered HTTP ", r.status);
    if (r.code == CURLE_OK && (m.size < 0 || static_cast<int64_t>(fs::file_size(incomplete, ec)) == m.size)) {
      complete = true;
      break;
    }
    last_error = r.code == CURLE_OK ? "the transfer ended early" : r.error;
    log_warning("download ", label, ": ", last_error, "; resuming (attempt ", attempt + 1, " of ", o.attempts, ")");
  }
  if (bar) bar->finish();
  std::error_code ec;
  if (!complete) {
    fail("download ", label, ": failed after ", o.attempts, " attempts (", last_error,
         "); run the command again to resume from ", incomplete.string());
  }
}

// snapshots/<commit>/<file> -> ../../blobs/<etag> (one more ../ per folder in `file`), replaced atomically.
void link_snapshot(const fs::path& repo_dir, const std::string& commit, const std::string& file, const std::string& etag) {
  const fs::path link = repo_dir / "snapshots" / commit / file;
  fs::create_directories(link.parent_path());
  std::string target = "../../blobs/" + etag;
  for (const char c : file) {
    if (c == '/') target = "../" + target;
  }
  const fs::path temp = link.string() + ".link." + std::to_string(::getpid()) + "." +
                        std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id()));
  std::error_code ec;
  fs::remove(temp, ec);
  fs::create_symlink(target, temp);
  fs::rename(temp, link);
}

std::string store(const std::string& repo, const std::string& file, const Metadata& meta, const fs::path& dir,
                  const HubOptions& o);

}  // namespace

std::string fetch_hub_file(const std::string& name, const std::string& file, const HubOptions& options, bool optional) {
  const std::string repo = parse_hub_repo(name);
  detail::check_repo_file(repo, file);
  const HubOptions o = detail::resolve_hub_options(options);
  const std::string cached = cached_hub_file(repo, file, o);
  // A commit is immutable: what the cache has for it is final.
  if (!cached.empty() && detail::is_commit_hash(o.revision)) return cached;
  if (*o.offline) {
    if (!cached.empty()) return cached;
    if (optional) return "";
    fail(repo, ": ", file, " is not in the cache ", o.cache_dir, " and HF_HUB_OFFLINE is set; fetch it once online");
  }
  global_init();
  bool unreachable = false;
  std::string why;
  const std::optional<Metadata> m = file_metadata(repo, file, o, unreachable, why);
  if (unreachable) {
    if (!cached.empty()) {
      log_warning("cannot reach ", o.endpoint, " (", why, "); using the cached ", repo, "/", file);
      return cached;
    }
    fail("cannot reach ", o.endpoint, " for ", repo, "/", file, " (", why, ") and it is not in the cache ",
         o.cache_dir, "; check the network (or HF_ENDPOINT), or set HF_HUB_OFFLINE=1 to use only the cache");
  }
  if (!m) {
    if (optional) return "";
    fail(repo, " (", o.endpoint, ") has no file '", file, "' at revision '", o.revision, "'");
  }
  const fs::path dir = detail::hub_repo_dir(o, repo);
  try {
    const fs::path ref = dir / "refs" / o.revision;
    if (o.revision != m->commit && detail::cached_commit(dir, o.revision) != m->commit) {
      fs::create_directories(ref.parent_path());  // refs/pr/1
      write_file_atomically(ref.string(), m->commit);
    }
    // The snapshot already has it (the usual case once fetched): nothing is written, so a read-only cache works.
    const fs::path snapshot = dir / "snapshots" / m->commit / file;
    std::error_code exists;
    if (fs::is_regular_file(snapshot, exists) && fs::exists(dir / "blobs" / m->etag, exists)) return snapshot.string();
    fs::create_directories(dir / "blobs");
    return store(repo, file, *m, dir, o);
  } catch (const fs::filesystem_error& e) {
    fail(repo, ": ", file, ": ", e.what(), " (in the cache ", o.cache_dir, ")");
  }
}

namespace {

// Downloads (unless the blob is there), verifies, moves into blobs/ and links from snapshots/.
std::string store(const std::string& repo, const std::string& file, const Metadata& meta, const fs::path& dir,
                  const HubOptions& o) {
  const Metadata* m = &meta;
  const fs::path blob = dir / "blobs" / m->etag;
  {
    FileLock lock(fs::path(o.cache_dir) / ".locks" / dir.filename() / (m->etag + ".lock"));
    std::error_code ec;
    if (!fs::exists(blob, ec)) {
      const fs::path incomplete = blob.string() + ".incomplete";
      download(*m, incomplete, repo + "/" + file, o);
      if (is_sha256(m->etag)) {
        const std::string actual = sha256_file(incomplete.string());
        if (actual != m->etag) {
          fs::remove(incomplete, ec);
          fail("download ", repo, "/", file, ": SHA-256 ", actual, " differs from the hub's ", m->etag,
               "; the file was damaged on the way and was removed; run the command again");
        }
      }
      fs::rename(incomplete, blob);
    }
  }
  link_snapshot(dir, m->commit, file, m->etag);
  return (dir / "snapshots" / m->commit / file).string();
}

}  // namespace
}  // namespace clip
