// TensorBoard event files, written in the documented record format without TensorFlow or a protobuf library:
// a file is a sequence of TFRecords (length, masked CRC-32C of the length, the bytes, masked CRC-32C of the
// bytes), each holding one serialized tensorflow.Event. The fields used, from tensorflow/core/util/event.proto and
// tensorflow/core/framework/summary.proto:
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "clip/train/callbacks.h"
#include "clip/util/error.h"

namespace clip {
namespace {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses, with its mask.
uint32_t crc32c(const std::string& data) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char byte : data) crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t masked_crc(const std::string& data) {
  const uint32_t crc = crc32c(data);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

template <typename T>
std::string little_endian(T value) {
  std::string out(sizeof(T), '\0');
  std::memcpy(out.data(), &value, sizeof(T));  // x86-64 and aarch64 are little-endian
  return out;
}

// Protocol buffer wire format: a key is (field << 3 | wire type); varints are base-128, low group first.
std::string varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}
std::string bytes_field(int field, const std::string& data) {
  return varint(uint64_t(field) << 3 | 2) + varint(data.size()) + data;
}

std::string event(int64_t step, const std::string& what) {
  const double wall_time =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  return varint(1 << 3 | 1) + little_endian(wall_time) + varint(2 << 3 | 0) + varint(static_cast<uint64_t>(step)) +
         what;
}

std::string record(const std::string& data) {
  const std::string length = little_endian<uint64_t>(data.size());
  return length + little_endian(masked_crc(length)) + data + little_endian(masked_crc(data));
}

}  // namespace

TensorBoardFile::TensorBoardFile(std::string folder) : folder_(std::move(folder)) {}

void TensorBoardFile::on_start(const StartEvent& /*event*/) {
  // One file per invocation, as TensorBoard's writers do; a resumed run adds a file beside the earlier ones and
  // TensorBoard shows them as one run.
  std::error_code ec;
  std::filesystem::create_directories(folder_, ec);
  if (ec) fail(folder_, ": cannot create the TensorBoard folder (", ec.message(), ")");
  char host[256] = "localhost";
  ::gethostname(host, sizeof(host) - 1);
  const auto seconds =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  path_ = (std::filesystem::path(folder_) /
           str("events.out.tfevents.", seconds, ".", host, ".", ::getpid(), ".clip_train"))
              .string();
  append(record(event(0, bytes_field(3, "brain.Event:2"))), std::ios::trunc);
}

void TensorBoardFile::on_metrics(const MetricsEvent& m) {
  std::vector<std::pair<std::string, double>> values = {{"train/loss", m.loss},
                                                        {"train/lr", m.lr},
                                                        {"train/scale", m.logit_scale},
                                                        {"train/samples_per_second", m.samples_per_s},
                                                        {"train/data_wait", m.data_wait}};
  if (m.logit_bias) values.emplace_back("train/logit_bias", *m.logit_bias);
  write_scalars(m.step, values);
}

void TensorBoardFile::on_eval(const EvalEvent& e) {
  std::vector<std::pair<std::string, double>> values;
  for (const auto& [name, value] : e.metrics) values.emplace_back("val/" + name, value);
  write_scalars(e.step, values);
}

void TensorBoardFile::write_scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values) {
  std::string summary;
  for (const auto& [tag, value] : values) {
    summary += bytes_field(1, bytes_field(1, tag) + varint(2 << 3 | 5) + little_endian(static_cast<float>(value)));
  }
  append(record(event(step, bytes_field(5, summary))), std::ios::app);
}

void TensorBoardFile::append(const std::string& bytes, std::ios::openmode mode) {
  if (path_.empty()) return;  // not started
  std::ofstream out(path_, std::ios::binary | mode);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.flush();
  if (!out) fail(path_, ": cannot write the TensorBoard event file (disk full?)");
}

}  // namespace clip
