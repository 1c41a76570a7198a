#include "clip/io/hf_hub.h"

#include <cctype>
#include <cstdlib>
#include <fstream>

#include "clip/util/error.h"
#include "io/hf_hub_cache.h"

namespace fs = std::filesystem;

namespace clip {
namespace detail {
namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

bool truthy(const std::string& value) {
  std::string v;
  for (const char c : value) v += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v == "1" || v == "true" || v == "yes" || v == "on";
}

std::string hf_home() {
  if (std::string home = env("HF_HOME"); !home.empty()) {
    if (home.rfind("~/", 0) == 0) home = env("HOME") + home.substr(1);
    return home;
  }
  const std::string xdg = env("XDG_CACHE_HOME");
  if (!xdg.empty()) return xdg + "/huggingface";
  return env("HOME") + "/.cache/huggingface";
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

}  // namespace

HubOptions resolve_hub_options(const HubOptions& options) {
  HubOptions o = options;
  if (o.cache_dir.empty()) o.cache_dir = env("HF_HUB_CACHE");
  if (o.cache_dir.empty()) o.cache_dir = env("HUGGINGFACE_HUB_CACHE");  // the older name, still read by Python
  if (o.cache_dir.empty()) o.cache_dir = hf_home() + "/hub";
  if (o.cache_dir.rfind("~/", 0) == 0) o.cache_dir = env("HOME") + o.cache_dir.substr(1);  // as os.path.expanduser
  if (o.endpoint.empty()) o.endpoint = env("HF_ENDPOINT");
  if (o.endpoint.empty()) o.endpoint = "https://huggingface.co";
  while (!o.endpoint.empty() && o.endpoint.back() == '/') o.endpoint.pop_back();
  if (o.token.empty()) o.token = env("HF_TOKEN");
  if (o.token.empty()) {
    // huggingface-cli login writes the token here.
    std::ifstream in(env("HF_TOKEN_PATH").empty() ? hf_home() + "/token" : env("HF_TOKEN_PATH"));
    std::string line;
    if (in && std::getline(in, line)) o.token = trim(line);
  }
  if (!o.offline) o.offline = truthy(env("HF_HUB_OFFLINE"));
  if (o.revision.empty()) o.revision = "main";
  // A branch, tag or commit names a file under refs/: nothing that leaves it.
  const bool bad = o.revision.find("..") != std::string::npos || o.revision.front() == '/' ||
                   o.revision.back() == '/' || o.revision.find("//") != std::string::npos ||
                   o.revision.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/") !=
                       std::string::npos;
  if (bad) fail("revision '", o.revision, "' is not a branch, tag or commit name");
  return o;
}

fs::path hub_repo_dir(const HubOptions& resolved, const std::string& repo) {
  std::string folder = "models--";
  for (const char c : repo) folder += c == '/' ? std::string("--") : std::string(1, c);
  return fs::path(resolved.cache_dir) / folder;
}

bool is_commit_hash(const std::string& revision) {
  if (revision.size() != 40) return false;
  for (const char c : revision) {
    if (!std::isdigit(static_cast<unsigned char>(c)) && (c < 'a' || c > 'f')) return false;
  }
  return true;
}

std::string cached_commit(const fs::path& repo_dir, const std::string& revision) {
  if (is_commit_hash(revision)) return revision;
  std::ifstream in(repo_dir / "refs" / revision);
  std::string commit;
  if (!in || !std::getline(in, commit)) return "";
  commit = trim(commit);
  return is_commit_hash(commit) ? commit : "";
}

void check_repo_file(const std::string& repo, const std::string& file) {
  const auto bad = [&](const char* why) { fail(repo, ": '", file, "' is not a file path inside a repo (", why, ")"); };
  if (file.empty()) bad("empty");
  if (file.front() == '/') bad("absolute");
  if (file.find('\\') != std::string::npos) bad("a backslash");
  size_t start = 0;
  while (start <= file.size()) {
    const size_t end = std::min(file.find('/', start), file.size());
    const std::string part = file.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") bad("an empty, '.' or '..' part");
    start = end + 1;
  }
}

}  // namespace detail

std::string hub_cache_dir(const HubOptions& options) { return detail::resolve_hub_options(options).cache_dir; }

std::string parse_hub_repo(const std::string& name) {
  std::string repo = name.rfind("hf-hub:", 0) == 0 ? name.substr(7) : name;
  const auto bad = [&](const char* why) {
    fail("'", name, "' is not a Hugging Face repo id (", why, "; expected org/name, e.g. timm/ViT-B-16-SigLIP2)");
  };
  const size_t slash = repo.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == repo.size() || repo.find('/', slash + 1) != std::string::npos) {
    bad("one '/' between an org and a name");
  }
  if (repo.size() > 96) bad("longer than 96 characters");
  for (const char c : repo) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '/' && c != '-' && c != '_' && c != '.') {
      bad("only letters, digits, '-', '_' and '.'");
    }
  }
  if (repo.find("..") != std::string::npos || repo.find("--") != std::string::npos || repo.front() == '.' ||
      repo[slash + 1] == '.') {
    bad("no '..', '--' or leading '.'");
  }
  return repo;
}

std::string cached_hub_file(const std::string& name, const std::string& file, const HubOptions& options) {
  const std::string repo = parse_hub_repo(name);
  detail::check_repo_file(repo, file);
  const HubOptions o = detail::resolve_hub_options(options);
  const fs::path dir = detail::hub_repo_dir(o, repo);
  const std::string commit = detail::cached_commit(dir, o.revision);
  if (commit.empty()) return "";
  const fs::path path = dir / "snapshots" / commit / file;
  std::error_code ec;
  return fs::is_regular_file(path, ec) ? path.string() : "";  // follows the link to the blob
}

}  // namespace clip
