// Models by name from the Hugging Face hub: the cache layout huggingface_hub writes, and downloads against a local
// stand-in of the hub (tests/hub_server.py on 127.0.0.1: the resolve URLs and headers the real hub answers with,
// the CDN redirect of LFS files, ranges, a dropped connection, a damaged file, a gated and a renamed repo).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <ATen/ATen.h>

#include "clip/io/hf_hub.h"
#include "clip/model/checkpoint.h"
#include "clip/model/model_tokenizer.h"
#include "clip/model/pretrained.h"
#include "clip/model/registry.h"
#include "clip/text/sentencepiece.h"
#include "clip/util/features.h"
#include "clip/util/sha256.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

using clip::test::TempDir;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(gen() & 0xff);
  return s;
}

// tests/hub_server.py serving `root`, for the life of the object.
class HubServer {
 public:
  explicit HubServer(const TempDir& dir, const std::string& root, const std::string& extra = "")
      : port_file_(dir / "port"), log_(dir / "server.log") {
    fs::remove(port_file_);
    pid_ = clip::test::start_command("python3 " + std::string(CLIP_TEST_DATA_DIR) + "/../hub_server.py --root " +
                                     root + " --port-file " + port_file_ + " --log " + log_ + " " + extra);
    for (int i = 0; i < 200 && !fs::exists(port_file_); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    port_ = std::stoi(read_all(port_file_));
  }
  ~HubServer() {
    ::kill(pid_, SIGTERM);
    clip::test::wait_exit_code(pid_);
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return read_all(log_); }
  /// The log from `offset` on, once it holds `needle` (the server writes a line after answering), or after 3 s.
  std::string log_after(size_t offset, const std::string& needle) const {
    std::string tail;
    for (int i = 0; i < 60; ++i) {
      tail = log().substr(std::min(offset, log().size()));
      if (tail.find(needle) != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return tail;
  }

 private:
  std::string port_file_, log_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// A hub root with one open_clip repo (the vit_tiny fixture in open_clip's hub layout), a 3 MB weights file, and a
// plain text file in a subfolder.
struct HubFixture {
  TempDir dir;
  std::string root = dir / "hub";
  std::string weights = random_bytes(3 << 20, 1);

  HubFixture() {
    const fs::path repo = fs::path(root) / "org" / "vit-tiny";
    fs::create_directories(repo);
    fs::copy_file(clip::test::data("vit_tiny.safetensors"), repo / "open_clip_model.safetensors");
    write_bytes(repo / "open_clip_config.json",
                "{\"model_cfg\": " + read_all(clip::test::data("vit_tiny.json")) + "}");
    write_bytes(repo / "weights.bin", weights);
    write_bytes(repo / "docs" / "notes.txt", "hello");
  }

  clip::HubOptions options(const HubServer& server) const {
    clip::HubOptions o;
    o.endpoint = server.endpoint();
    o.cache_dir = dir / "cache";
    o.offline = false;
    o.token = "";
    return o;
  }
};

TEST(Hub, RepoNamesAndCachePaths) {
  EXPECT_EQ(clip::parse_hub_repo("hf-hub:timm/ViT-B-16-SigLIP2"), "timm/ViT-B-16-SigLIP2");
  EXPECT_EQ(clip::parse_hub_repo("google/siglip-base-patch16-224"), "google/siglip-base-patch16-224");
  for (const char* bad : {"timm", "a/b/c", "/x", "a/../b", "a/b c", "a/--b"}) {
    EXPECT_CONTAINS(clip::test::error_of([&] { clip::parse_hub_repo(bad); }), "not a Hugging Face repo id");
  }
  EXPECT_TRUE(clip::is_hub_model_name("hf-hub:timm/ViT-B-16-SigLIP2"));
  EXPECT_TRUE(clip::is_hub_model_name("timm/ViT-B-16-SigLIP2"));
  EXPECT_FALSE(clip::is_hub_model_name(clip::test::data("vit_tiny.safetensors")));  // exists here
  EXPECT_FALSE(clip::is_hub_model_name("runs/model.safetensors"));               // a missing file, not a repo
  clip::HubOptions o;
  o.cache_dir = "/nonexistent/cache";
  o.offline = true;
  EXPECT_EQ(clip::cached_hub_file("org/name", "config.json", o), "");
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::fetch_hub_file("org/name", "config.json", o); }),
                  "HF_HUB_OFFLINE is set");
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::fetch_hub_file("org/name", "../x", o); }), "not a file path");
}

TEST(Hub, FetchesIntoHuggingFaceHubsCacheLayout) {
  if (!clip::features().hub) GTEST_SKIP() << "built without libcurl (CLIP_WITH_HUB=OFF)";
  HubFixture f;
  HubServer server(f.dir, f.root);
  const clip::HubOptions o = f.options(server);
  const std::string weights = clip::fetch_hub_file("org/vit-tiny", "weights.bin", o);
  EXPECT_EQ(read_all(weights), f.weights);
  // huggingface_hub's layout: refs/main holds the commit, the snapshot links to blobs/<sha256>.
  const fs::path repo = fs::path(o.cache_dir) / "models--org--vit-tiny";
  const std::string commit = read_all((repo / "refs" / "main").string());
  ASSERT_EQ(commit.size(), 40u) << commit;
  EXPECT_EQ(weights, (repo / "snapshots" / commit / "weights.bin").string());
  EXPECT_TRUE(fs::is_symlink(weights));
  EXPECT_EQ(fs::read_symlink(weights).string(), "../../blobs/" + clip::sha256_file(weights));
  // A file in a folder: one more ../ in its link; a regular file's blob is named by its git hash.
  const std::string notes = clip::fetch_hub_file("org/vit-tiny", "docs/notes.txt", o);
  EXPECT_EQ(read_all(notes), "hello");
  EXPECT_EQ(fs::read_symlink(notes).string().rfind("../../../blobs/", 0), 0u) << fs::read_symlink(notes);
  EXPECT_EQ(clip::cached_hub_file("org/vit-tiny", "docs/notes.txt", o), notes);
  // Again: the hub is asked (HEAD) but nothing is downloaded; offline, the network is not asked at all.
  const size_t gets = server.log().size();
  EXPECT_EQ(clip::fetch_hub_file("org/vit-tiny", "weights.bin", o), weights);
  const std::string later = server.log_after(gets, "HEAD");
  EXPECT_NE(later.find("HEAD"), std::string::npos) << later;
  EXPECT_EQ(later.find("GET"), std::string::npos) << later;
  clip::HubOptions offline = o;
  offline.offline = true;
  const size_t before = server.log().size();
  EXPECT_EQ(clip::fetch_hub_file("org/vit-tiny", "weights.bin", offline), weights);
  EXPECT_EQ(server.log().size(), before);
  // A missing file: "" when optional, else one line naming it; a missing repo says so.
  EXPECT_EQ(clip::fetch_hub_file("org/vit-tiny", "absent.json", o, /*optional=*/true), "");
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::fetch_hub_file("org/vit-tiny", "absent.json", o); }),
                  "has no file 'absent.json'");
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::fetch_hub_file("org/nothing", "config.json", o); }),
                  "no such repo");
}

TEST(Hub, ResumesADroppedDownloadAndRefusesADamagedOne) {
  if (!clip::features().hub) GTEST_SKIP() << "built without libcurl (CLIP_WITH_HUB=OFF)";
  {
    HubFixture f;
    HubServer server(f.dir, f.root, "--drop-after 1048576");
    std::vector<int64_t> seen;
    clip::HubOptions o = f.options(server);
    o.progress = [&](const std::string&, int64_t done, int64_t) { seen.push_back(done); };
    EXPECT_EQ(read_all(clip::fetch_hub_file("org/vit-tiny", "weights.bin", o)), f.weights);
    EXPECT_NE(server.log_after(0, "bytes=1048576-").find("bytes=1048576-"), std::string::npos)
        << server.log();  // resumed, not restarted
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen.back(), int64_t(3) << 20);
  }
  {
    HubFixture f;
    HubServer server(f.dir, f.root, "--corrupt org/vit-tiny/weights.bin");
    const clip::HubOptions o = f.options(server);
    EXPECT_CONTAINS(clip::test::error_of([&] { clip::fetch_hub_file("org/vit-tiny", "weights.bin", o); }),
                    "differs from the hub's");
    EXPECT_EQ(clip::cached_hub_file("org/vit-tiny", "weights.bin", o), "");
    for (const auto& entry : fs::recursive_directory_iterator(o.cache_dir)) {
      EXPECT_EQ(entry.path().string().find(".incomplete"), std::string::npos) << entry.path();  // nothing left
    }
  }
}

TEST(Hub, GatedRenamedAndUnreachable) {
  if (!clip::features().hub) GTEST_SKIP() << "built without libcurl (CLIP_WITH_HUB=OFF)";
  HubFixture f;
  write_bytes(fs::path(f.root) / "org" / "vit-tiny" / ".gated", "");
  write_bytes(fs::path(f.root) / "old" / "name" / ".renamed", "org/vit-tiny");
  HubServer server(f.dir, f.root, "--token secret");
  clip::HubOptions o = f.options(server);
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::fetch_hub_file("org/vit-tiny", "docs/notes.txt", o); }),
                  "set HF_TOKEN");
  o.token = "secret";
  EXPECT_EQ(read_all(clip::fetch_hub_file("org/vit-tiny", "docs/notes.txt", o)), "hello");
  EXPECT_EQ(read_all(clip::fetch_hub_file("old/name", "docs/notes.txt", o)), "hello");  // a relative redirect
  EXPECT_NE(server.log_after(0, "Authorization: yes").find("Authorization: yes"), std::string::npos);
  // An LFS file comes from the CDN, which never sees the token (as huggingface_hub).
  clip::fetch_hub_file("org/vit-tiny", "open_clip_model.safetensors", o);
  std::istringstream lines(server.log_after(0, "GET /cdn/"));
  int cdn = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.find("/cdn/") == std::string::npos) continue;
    ++cdn;
    EXPECT_NE(line.find("Authorization: no"), std::string::npos) << line;
  }
  EXPECT_GT(cdn, 0);
  // Unreachable: the cached file is used (with a warning); a file not cached is one line about the network.
  clip::HubOptions down = o;
  down.endpoint = "http://127.0.0.1:1";
  EXPECT_EQ(read_all(clip::fetch_hub_file("org/vit-tiny", "docs/notes.txt", down)), "hello");
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::fetch_hub_file("org/vit-tiny", "weights.bin", down); }),
                  "cannot reach http://127.0.0.1:1");
}

// load_model("hf-hub:org/name"): the repo's open_clip files fetched into the cache and loaded as that folder.
TEST(Hub, LoadsAModelByName) {
  if (!clip::features().hub) GTEST_SKIP() << "built without libcurl (CLIP_WITH_HUB=OFF)";
  HubFixture f;
  HubServer server(f.dir, f.root);
  const clip::HubOptions o = f.options(server);
  ::setenv("HF_ENDPOINT", o.endpoint.c_str(), 1);
  ::setenv("HF_HUB_CACHE", o.cache_dir.c_str(), 1);
  clip::CLIP by_name = clip::load_model("hf-hub:org/vit-tiny");
  // The hub down: the cached model loads (its optional files, asked of the hub, are decided by the cache).
  ::setenv("HF_ENDPOINT", "http://127.0.0.1:1", 1);
  EXPECT_EQ(clip::load_model("hf-hub:org/vit-tiny")->config().name, "vit-tiny");
  ::unsetenv("HF_ENDPOINT");
  ::unsetenv("HF_HUB_CACHE");
  EXPECT_EQ(by_name->config().name, "vit-tiny");
  clip::CLIP local = clip::load_model(clip::test::data("vit_tiny.safetensors"),
                                      clip::LoadOptions().config_path(clip::test::data("vit_tiny.json")));
  for (const auto& p : local->named_parameters()) {
    EXPECT_TRUE(at::equal(p.value(), by_name->named_parameters()[p.key()])) << p.key();
  }
  EXPECT_NE(server.log_after(0, "/cdn/").find("/cdn/"), std::string::npos);  // the weights came via the LFS redirect
  EXPECT_NE(clip::cached_hub_file("org/vit-tiny", "open_clip_model.safetensors", o), "");
}

}  // namespace

namespace {

// A model whose config names a hub tokenizer (open_clip's hf_tokenizer_name, as the SigLIP configs do) and whose
// folder holds none: load_tokenizer fetches the repo's SentencePiece model and tokenizer_config.json into the cache.
TEST(Hub, FetchesAModelsTokenizerByName) {
  if (!clip::features().hub) GTEST_SKIP() << "built without libcurl (CLIP_WITH_HUB=OFF)";
  HubFixture f;
  const fs::path repo = fs::path(f.root) / "org" / "tok";
  fs::create_directories(repo);
  std::string captions;
  for (const char* animal : {"cat", "dog", "bird", "horse", "fish"}) {
    for (const char* place : {"on a table", "in a park", "at night", "in the snow"}) {
      captions += std::string("a photo of a ") + animal + " " + place + "\n";
    }
  }
  write_bytes(fs::path(f.dir / "captions.txt"), captions);
  clip::train_sentencepiece(
      clip::SentencePieceTrainOptions(f.dir / "captions.txt", (repo / "spiece.model").string()).vocab_size(24));
  write_bytes(repo / "tokenizer_config.json", R"({"tokenizer_class": "T5Tokenizer", "eos_token": "</s>", "pad_token": "</s>"})");
  HubServer server(f.dir, f.root);
  const clip::HubOptions o = f.options(server);
  clip::TextConfig text;
  text.vocab_size = 24;
  text.context_length = 32;
  text.pool = clip::TextPool::last;
  text.hf_tokenizer_name = "org/tok";
  text.hf_tokenizer_clean = "canonicalize";
  ::setenv("HF_ENDPOINT", o.endpoint.c_str(), 1);
  ::setenv("HF_HUB_CACHE", o.cache_dir.c_str(), 1);
  const std::unique_ptr<clip::Tokenizer> tokenizer = clip::load_tokenizer(text);
  ::unsetenv("HF_ENDPOINT");
  ::unsetenv("HF_HUB_CACHE");
  const std::string model = clip::cached_hub_file("org/tok", "spiece.model", o);
  ASSERT_NE(model, "");
  EXPECT_NE(clip::cached_hub_file("org/tok", "tokenizer_config.json", o), "");
  // As T5Tokenizer: no start token, the end token "</s>" (id 3 in this layout) and padding with it; open_clip's
  // canonicalize first (punctuation and case gone).
  clip::SentencePieceTokenizer direct(clip::SentencePieceOptions(model).add_start(false).pad_id(3));
  std::vector<int64_t> expected = direct.encode("a photo of a cat");
  expected.push_back(3);
  expected.resize(32, 3);
  const at::Tensor ids = tokenizer->tokenize({"A photo, of a CAT!"}, 32);
  EXPECT_EQ(std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + 32), expected);
}

}  // namespace

namespace {

// open_clip's released weights by model and tag: the config they load into (QuickGELU and preprocessing from the
// release, as open_clip's create_model), and what an unknown pair, a tag without a model, and offline say.
TEST(Hub, PretrainedTagsAsOpenClipNamesThem) {
  const std::vector<std::string> tags = clip::pretrained_tags("ViT-B-32");
  ASSERT_FALSE(tags.empty());
  EXPECT_EQ(tags.front(), "openai");
  EXPECT_TRUE(clip::is_pretrained_tag("openai"));
  EXPECT_TRUE(clip::is_pretrained_tag("webli"));
  EXPECT_FALSE(clip::is_pretrained_tag("ViT-B-32"));
  const clip::ModelConfig openai = clip::pretrained_config("ViT-B-32", "openai");
  EXPECT_TRUE(openai.quick_gelu);  // OpenAI's release: QuickGELU
  // libclip's ViT-B-32.json is OpenAI's (QuickGELU); open_clip's is GELU, and so are LAION's weights for it.
  EXPECT_TRUE(clip::registered_config("ViT-B-32").quick_gelu);
  EXPECT_FALSE(clip::pretrained_config("ViT-B-32", "laion2b_s34b_b79k").quick_gelu);
  EXPECT_TRUE(clip::pretrained_config("ViT-B-32-quickgelu", "metaclip_400m").quick_gelu);
  const clip::ModelConfig siglip = clip::pretrained_config("ViT-B-16-SigLIP2", "webli");
  EXPECT_EQ(siglip.preprocess.resize_mode, clip::ResizeMode::squash);
  EXPECT_EQ(siglip.preprocess.mean, (std::array<double, 3>{0.5, 0.5, 0.5}));
  const clip::ModelConfig dfn = clip::pretrained_config("ViT-H-14-378-quickgelu", "dfn5b");
  EXPECT_EQ(dfn.preprocess.resize_mode, clip::ResizeMode::squash);
  EXPECT_CONTAINS(clip::test::error_of([] { clip::pretrained_config("ViT-B-32", "nope"); }),
                  "ViT-B-32 has no pretrained tag 'nope'; open_clip's tags for it: openai, laion400m_e31");
  EXPECT_CONTAINS(clip::test::error_of([] { clip::pretrained_config("ViT-B-33", "openai"); }), "ViT-B-32");
  EXPECT_CONTAINS(clip::test::error_of([] { clip::load_model("openai"); }),
                  "'openai' is one of open_clip's pretrained tags: name the model with it");
  // Offline with an empty cache: one line naming the repo open_clip fetches the release from.
  TempDir dir;
  ::setenv("HF_HUB_OFFLINE", "1", 1);
  ::setenv("HF_HUB_CACHE", (dir / "cache").c_str(), 1);
  const std::string offline =
      clip::test::error_of([] { clip::load_model("openai", clip::LoadOptions().model_name("ViT-B-32")); });
  ::unsetenv("HF_HUB_OFFLINE");
  ::unsetenv("HF_HUB_CACHE");
  EXPECT_CONTAINS(offline, "timm/vit_base_patch32_clip_224.openai: open_clip_pytorch_model.bin is not in the cache");
}

}  // namespace
