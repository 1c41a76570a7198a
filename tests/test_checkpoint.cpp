// Checkpoint formats: every fixture format of vit_tiny and rn_tiny (and the HF folder) gives the reference's
// outputs within 1e-4 relative, with an explicit config and with an inferred one; round trips; bad inputs.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "clip/model/checkpoint.h"
#include "clip/model/hf.h"
#include "clip/io/safetensors.h"
#include "clip/model/registry.h"
#include "clip/util/error.h"
#include "clip/util/log.h"
#include "clip/util/sha256.h"
#include "io/pickle.h"
#include "test_util.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/import.h>

#include <random>

#include "io/torch_archive.h"

namespace fs = std::filesystem;

namespace {

using clip::test::TempDir;

constexpr double kTolerance = 1e-4;  // fixtures/README.md

// Runs the model on the fixture inputs and checks every output against the reference.
void expect_reference_outputs(clip::CLIPImpl& model, const std::string& io_file, const std::string& label) {
  const clip::TensorMap io = clip::read_safetensors(clip::test::data(io_file)).tensors;
  torch::NoGradGuard no_grad;
  const clip::ClipOutput out = model.forward(io.at("image"), io.at("text"));
  EXPECT_LT(clip::test::report(label + " image_features", out.image_features, io.at("image_features")), kTolerance);
  EXPECT_LT(clip::test::report(label + " text_features", out.text_features, io.at("text_features")), kTolerance);
  EXPECT_LT(clip::test::report(label + " logits_per_image", out.logits_per_image, io.at("logits_per_image")), kTolerance);
}

struct FormatCase {
  std::string model;
  std::string suffix;
  clip::CheckpointFormat format;
};

void PrintTo(const FormatCase& c, std::ostream* os) { *os << c.model << c.suffix; }

class Formats : public testing::TestWithParam<FormatCase> {};

TEST_P(Formats, MatchTheReferenceWithAndWithoutConfig) {
  const FormatCase c = GetParam();
  const std::string path = clip::test::data(c.model + c.suffix);
  EXPECT_EQ(clip::detect_format(path), c.format);
  const auto with_config = clip::LoadOptions().config_path(clip::test::data(c.model + ".json"));
  clip::CLIP configured = clip::load_model(path, with_config);
  expect_reference_outputs(*configured, c.model + ".io.safetensors", c.model + c.suffix + " --config");
  clip::CLIP inferred = clip::load_model(path);
  EXPECT_EQ(clip::to_json(inferred->config()), clip::to_json(configured->config())) << "inferred architecture";
  expect_reference_outputs(*inferred, c.model + ".io.safetensors", c.model + c.suffix + " inferred");
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, Formats,
    testing::Values(FormatCase{"vit_tiny", ".safetensors", clip::CheckpointFormat::safetensors},
                    FormatCase{"vit_tiny", ".ckpt.pt", clip::CheckpointFormat::torch_zip},
                    FormatCase{"vit_tiny", ".jit.pt", clip::CheckpointFormat::torchscript},
                    FormatCase{"rn_tiny", ".safetensors", clip::CheckpointFormat::safetensors},
                    FormatCase{"rn_tiny", ".ckpt.pt", clip::CheckpointFormat::torch_zip},
                    FormatCase{"rn_tiny", ".jit.pt", clip::CheckpointFormat::torchscript}),
    [](const auto& info) {
      std::string name = info.param.model + info.param.suffix;
      for (char& ch : name) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
      return name;
    });

TEST(HfFolder, MatchesTheReference) {
  const std::string dir = clip::test::data("hf_vit_tiny");
  EXPECT_EQ(clip::detect_format(dir), clip::CheckpointFormat::hf_folder);
  clip::CLIP model = clip::load_model(dir);
  EXPECT_TRUE(model->config().quick_gelu);
  EXPECT_EQ(model->config().text.pool, clip::TextPool::first_eos);
  EXPECT_EQ(model->config().text.eos_token_id, 999);
  expect_reference_outputs(*model, "hf_vit_tiny.io.safetensors", "hf_vit_tiny");
  const auto with_config = clip::LoadOptions().config_path(clip::test::data("vit_tiny.json"));
  clip::CLIP configured = clip::load_model(dir, with_config);
  expect_reference_outputs(*configured, "hf_vit_tiny.io.safetensors", "hf_vit_tiny --config");
}

TEST(RoundTrip, SaveThenLoadGivesIdenticalTensors) {
  TempDir tmp;
  for (const std::string source : {"vit_tiny.jit.pt", "rn_tiny.ckpt.pt", "vit_tiny.safetensors"}) {
    clip::CLIP model = clip::load_model(clip::test::data(source));
    const std::string saved = (tmp / "saved.safetensors");
    clip::save_model(*model, saved);
    clip::CLIP again = clip::load_model(saved);  // no config given: the file carries it
    EXPECT_EQ(clip::to_json(again->config()), clip::to_json(model->config()));
    const clip::TensorMap a = clip::state_dict(*model), b = clip::state_dict(*again);
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [name, t] : a) EXPECT_TRUE(at::equal(t, b.at(name))) << source << " " << name;
  }
}

TEST(RoundTrip, OpenAiArchiveToHfFolderGivesTheSameOutputs) {
  TempDir tmp;
  clip::CLIP model = clip::load_model(clip::test::data("vit_tiny.jit.pt"));
  const std::string dir = (tmp / "hf");
  clip::save_hf_folder(*model, dir);
  EXPECT_TRUE(fs::exists(dir + "/config.json"));
  EXPECT_TRUE(fs::exists(dir + "/model.safetensors"));
  const clip::TensorMap hf = clip::read_safetensors(dir + "/model.safetensors").tensors;
  EXPECT_TRUE(hf.count("vision_model.encoder.layers.1.self_attn.k_proj.weight"));
  EXPECT_TRUE(hf.count("vision_model.pre_layrnorm.weight"));
  // Same names and shapes as a folder transformers wrote itself.
  const clip::TensorMap reference = clip::read_safetensors(clip::test::data("hf_vit_tiny/model.safetensors")).tensors;
  for (const auto& [name, t] : reference) {
    ASSERT_TRUE(hf.count(name)) << name;
    EXPECT_EQ(hf.at(name).sizes(), t.sizes()) << name;
  }
  EXPECT_EQ(hf.size(), reference.size());
  clip::CLIP again = clip::load_model(dir);
  expect_reference_outputs(*again, "vit_tiny.io.safetensors", "vit_tiny.jit.pt -> HF folder");
}

TEST(Activation, AStatedMismatchIsRefused) {
  TempDir tmp;
  std::ifstream in(clip::test::data("vit_tiny.json"));
  std::string json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  json.replace(json.find("\"quick_gelu\": true"), 18, "\"quick_gelu\": false");
  const std::string gelu = (tmp / "gelu.json");
  std::ofstream(gelu) << json;
  for (const std::string source : {"vit_tiny.jit.pt", "hf_vit_tiny"}) {
    const auto options = clip::LoadOptions().config_path(gelu);
    try {
      clip::load_model(clip::test::data(source), options);
      ADD_FAILURE() << source;
    } catch (const clip::Error& e) {
      std::printf("[ message  ] %s\n", e.what());
      EXPECT_NE(std::string(e.what()).find("QuickGELU"), std::string::npos) << e.what();
    }
  }
  // A plain state dict states nothing: the config decides.
  const auto options = clip::LoadOptions().config_path(gelu);
  EXPECT_FALSE(clip::load_model(clip::test::data("vit_tiny.ckpt.pt"), options)->config().quick_gelu);
}

// Expects loading `path` to fail with one line naming the file and `needle`.
void expect_refused(const std::string& path, const std::string& needle, const clip::LoadOptions& options = {}) {
  try {
    clip::load_model(path, options);
    ADD_FAILURE() << "loaded " << path;
  } catch (const clip::Error& e) {
    const std::string message = e.what();
    std::printf("[ message  ] %s\n", message.substr(0, 400).c_str());
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find(needle), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
  }
}

std::string bad(const std::string& name) { return clip::test::data("bad_checkpoints/" + name); }

TEST(BadInputs, EachIsAClearOneLineError) {
  TempDir tmp;
  // Truncated zip archives.
  for (const std::string source : {"vit_tiny.ckpt.pt", "vit_tiny.jit.pt"}) {
    std::ifstream in(clip::test::data(source), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string cut = (tmp / "cut_" + source);
    std::ofstream(cut, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
    expect_refused(cut, "truncated or corrupt");
  }
  expect_refused(bad("unrelated.zip"), "without PyTorch's records");
  expect_refused(bad("custom_class.pt"), "class __main__.Custom");
  expect_refused(bad("list_of_tensors.pt"), "not a dict of tensors");
  expect_refused(bad("int_in_state_dict.pt"), "'logit_scale' is a int, not a tensor");
  expect_refused(bad("legacy.pt"), "legacy");
  expect_refused(bad("other_model.jit.pt"), "not a CLIP state dict");
  expect_refused(bad("not_a_checkpoint.bin"), "not a checkpoint");
  const std::string empty = (tmp / "empty.pt");
  std::ofstream(empty).close();
  expect_refused(empty, "empty file");
  fs::create_directories((tmp / "folder"));
  expect_refused((tmp / "folder"), "without config.json");
  expect_refused((tmp / "missing.pt"), "no such file");
  const auto vit = clip::LoadOptions().config_path(clip::test::data("vit_tiny.json"));
  expect_refused(clip::test::data("rn_tiny.jit.pt"), "state dict does not match", vit);
}

// libclip reads a TorchScript archive's data.pkl and the __parameters__/__buffers__ lines of its code/ (LibTorch's
// TorchScript importer compiles that code and crashes on hostile archives). Reference: torch::jit::load's
// named_parameters() and named_buffers(); the same names, bit-identical tensors.
TEST(TorchScript, ReadsWhatJitLoadReads) {
  for (const std::string name : {"vit_tiny.jit.pt", "rn_tiny.jit.pt", "bad_checkpoints/other_model.jit.pt"}) {
    const std::string path = name.find('/') == std::string::npos ? clip::test::data(name) : bad(name.substr(16));
    torch::jit::Module module = torch::jit::load(path, at::kCPU);
    clip::TensorMap reference;
    for (const auto& p : module.named_parameters(true)) reference[p.name] = p.value.detach();
    for (const auto& b : module.named_buffers(true)) reference[b.name] = b.value.detach();
    const clip::TensorMap ours = clip::read_torchscript_tensors(path);
    ASSERT_EQ(ours.size(), reference.size()) << name;
    for (const auto& [key, tensor] : reference) {
      ASSERT_TRUE(ours.count(key)) << name << ": " << key;
      EXPECT_TRUE(ours.at(key).dtype() == tensor.dtype() && ours.at(key).equal(tensor)) << name << ": " << key;
    }
    std::printf("[ measured ] %s: %zu tensors, all bit-identical to torch::jit::load's\n", name.c_str(), ours.size());
  }
}

// A zip record whose central directory claims far more bytes than its compressed data can expand to is refused
// before anything is allocated for it (PyTorch's reader would allocate the claimed size).
TEST(ZipRecords, ImpossibleSizesAreRefused) {
  TempDir tmp;
  std::ifstream in(clip::test::data("vit_tiny.ckpt.pt"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The central directory entry of the 'version' record: mark it deflated and claim 2 GiB uncompressed.
  const size_t entry = bytes.rfind(std::string("PK\x01\x02", 4));
  size_t at = std::string::npos;
  for (size_t p = bytes.find(std::string("PK\x01\x02", 4)); p != std::string::npos;
       p = bytes.find(std::string("PK\x01\x02", 4), p + 4)) {
    const size_t name_size = uint8_t(bytes[p + 28]) | uint8_t(bytes[p + 29]) << 8;
    if (bytes.compare(p + 46, name_size, "vit_tiny.ckpt/version") == 0) at = p;
  }
  ASSERT_NE(entry, std::string::npos);
  ASSERT_NE(at, std::string::npos);
  bytes[at + 10] = 8;
  for (int i = 0; i < 4; ++i) bytes[at + 24 + i] = "\x00\x00\x00\x80"[i];
  const std::string path = (tmp / "claims.pt");
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  expect_refused(path, "claims 2147483648 bytes");
}

// The unpickler on corrupted input: 3000 random mutations of a real data.pkl either load or fail with
// clip::Error; nothing else (no crash, no out-of-range view, no other exception type).
TEST(Pickle, MutatedDataFailsCleanly) {
  caffe2::serialize::PyTorchStreamReader zip(clip::test::data("vit_tiny.ckpt.pt"));
  auto [record, size] = zip.getRecord("data.pkl");
  const auto* original = static_cast<const uint8_t*>(record.get());
  const clip::pickle::StorageLoader zeros = [](const std::string&, at::ScalarType dtype, int64_t numel) {
    return at::zeros({std::min<int64_t>(numel, 1 << 20)}, at::TensorOptions().dtype(dtype));
  };
  std::mt19937 rng(1234);
  int loaded = 0, refused = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<uint8_t> bytes(original, original + size);
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) bytes[rng() % bytes.size()] = static_cast<uint8_t>(rng());
    if (trial % 3 == 0) bytes.resize(rng() % bytes.size());  // and truncations
    try {
      clip::pickle::unpickle(bytes.data(), bytes.size(), zeros, "mutated");
      ++loaded;
    } catch (const clip::Error&) {
      ++refused;
    }
  }
  std::printf("[ measured ] 3000 mutated pickles: %d loaded, %d refused with clip::Error, 0 crashed\n", loaded, refused);
  EXPECT_EQ(loaded + refused, 3000);
}

// Nesting: MARK ... LIST n times makes lists n deep. 100 levels load (a state dict is 2-4), deeper is refused
// with one line (100,000 levels used to overflow the stack, in the reader's users or in the value's destructor).
TEST(Pickle, NestingIsBounded) {
  const clip::pickle::StorageLoader none = [](const std::string&, at::ScalarType, int64_t) { return at::Tensor(); };
  const auto nested = [](size_t depth) {
    std::string p = "\x80\x02" + std::string(depth, '(') + std::string(depth, 'l') + ".";
    return std::vector<uint8_t>(p.begin(), p.end());
  };
  const std::vector<uint8_t> fine = nested(clip::pickle::kMaxDepth);
  EXPECT_EQ(clip::pickle::unpickle(fine.data(), fine.size(), none, "fine")->depth, clip::pickle::kMaxDepth);
  const std::vector<uint8_t> deep = nested(100000);
  const std::string message = clip::test::error_of([&] { clip::pickle::unpickle(deep.data(), deep.size(), none, "deep.pt"); });
  EXPECT_CONTAINS(message, "deep.pt: containers nested deeper than 100 levels");
}

// Found by fuzz/fuzz_pickle: a list that appends itself (a cycle that shared_ptr leaked), and a container filled
// after another already holds it (the way to a longer cycle), are refused; a shared, complete child is fine.
TEST(Pickle, CyclesAreRefused) {
  const clip::pickle::StorageLoader none = [](const std::string&, at::ScalarType, int64_t) { return at::Tensor(); };
  const auto unpickle = [&](const std::string& p) {
    return clip::pickle::unpickle(reinterpret_cast<const uint8_t*>(p.data()), p.size(), none, "cycle.pt");
  };
  // EMPTY_LIST, BINPUT 0, BINGET 0, APPEND, STOP: l.append(l)
  EXPECT_CONTAINS(clip::test::error_of([&] { unpickle(std::string("\x80\x02]q\x00h\x00" "a.", 9)); }),
                  "cycle.pt: corrupt pickle (a container that would contain itself, at byte 7)");
  // a = []; b = [a]; a.append(b)
  EXPECT_CONTAINS(clip::test::error_of([&] { unpickle(std::string("\x80\x02]q\x00]q\x01h\x00" "ah\x00h\x01" "a.", 16)); }),
                  "a container that would contain itself");
  // a = []; b = [a, a]: the same complete list twice
  const clip::pickle::ValuePtr shared = unpickle(std::string("\x80\x02]q\x00](h\x00h\x00" "e.", 13));
  ASSERT_EQ(shared->items.size(), 2u);
  EXPECT_EQ(shared->items[0], shared->items[1]);
}

// A config that contradicts the one a checkpoint stores is refused, naming the differences (same shapes, other
// heads: the weights would load and compute garbage); --override-config lets it through. Weights with NaN load
// with a warning naming them, and are refused with --strict.
TEST(LoadModel, ContradictingConfigAndNonFiniteWeights) {
  clip::test::TempDir tmp;
  clip::CLIP model(clip::load_model_config(clip::test::data("vit_tiny.json")));
  const std::string file = tmp / "tiny.safetensors";
  clip::save_model(*model, file);
  const std::string other = tmp.write("heads4.json", R"({"embed_dim": 64, "quick_gelu": true,
      "vision_cfg": {"image_size": 64, "layers": 2, "width": 128, "patch_size": 16},
      "text_cfg": {"context_length": 77, "vocab_size": 1000, "width": 128, "heads": 4, "layers": 2}})");
  const std::string message = clip::test::error_of([&] { clip::load_model(file, clip::LoadOptions().config_path(other)); });
  EXPECT_CONTAINS(message, file + ": " + other + " contradicts the config stored in the checkpoint (text_cfg.heads: 4 vs 2)");
  EXPECT_EQ(clip::load_model(file, clip::LoadOptions().config_path(other).override_config(true))->config().text.heads, 4);
  EXPECT_NO_THROW(clip::load_model(file, clip::LoadOptions().config_path(clip::test::data("vit_tiny.json"))));

  {
    at::NoGradGuard no_grad;
    model->parameters()[0].view(-1)[0] = std::nan("");
  }
  const std::string poisoned = tmp / "nan.safetensors";
  clip::save_model(*model, poisoned);
  std::vector<std::string> notes;
  clip::set_log_sink([&](clip::LogLevel, const std::string& line) { notes.push_back(line); });
  EXPECT_NO_THROW(clip::load_model(poisoned));
  clip::set_log_sink(nullptr);
  ASSERT_EQ(notes.size(), 1u);
  std::printf("[ message  ] %s\n", notes[0].c_str());
  EXPECT_CONTAINS(notes[0], poisoned + ": 1 weight tensors hold NaN or infinity (");
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::load_model(poisoned, clip::LoadOptions().strict(true)); }),
                  "the file is damaged or from a diverged run");
}

TEST(Registry, ResolvesNamesAndVerifiesHashes) {
  const clip::ModelConfig config = clip::registered_config("ViT-B-32");
  EXPECT_EQ(config.vision.patch_size, 32);
  EXPECT_EQ(clip::registered_model("ViT-L-14-336").release_file, "ViT-L-14-336px.pt");
  EXPECT_EQ(clip::registered_models().size(), 9u);
  try {
    clip::registered_config("ViT-Q-99");
    ADD_FAILURE();
  } catch (const clip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("ViT-B-32"), std::string::npos) << "lists the known names: " << e.what();
  }
  // A config file's path works where a name does; a missing one is named.
  EXPECT_EQ(clip::registered_config(clip::test::data("vit_tiny.json")).vision.width,
            clip::load_model_config(clip::test::data("vit_tiny.json")).vision.width);
  try {
    clip::registered_config("no/such/model.json");
    ADD_FAILURE();
  } catch (const clip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no/such/model.json: no such model config file"), std::string::npos) << e.what();
  }
  testing::internal::CaptureStderr();
  EXPECT_FALSE(clip::verify_release("ViT-B-32", clip::test::data("vit_tiny.jit.pt")));
  const std::string warning = testing::internal::GetCapturedStderr();
  std::printf("[ message  ] %s", warning.c_str());
  EXPECT_NE(warning.find("40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"), std::string::npos);
  EXPECT_NE(warning.find(clip::sha256_file(clip::test::data("vit_tiny.jit.pt"))), std::string::npos);
}

TEST(Sha256, MatchesTheStandardVectors) {
  auto hash = [](const std::string& s) {
    clip::Sha256 h;
    h.update(s.data(), s.size());
    return h.hex_digest();
  };
  EXPECT_EQ(hash(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hash("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  clip::Sha256 million;
  const std::string chunk(1000, 'a');
  for (int i = 0; i < 1000; ++i) million.update(chunk.data(), chunk.size());
  EXPECT_EQ(million.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

}  // namespace
