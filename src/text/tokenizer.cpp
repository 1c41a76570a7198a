#include "clip/text/tokenizer.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>


namespace clip {

TextError::TextError(size_t index, const std::string& reason)
    : Error(str("text ", index, ": ", reason)), index_(index), reason_(reason) {}

std::vector<int64_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids;
  encode(text, ids);
  return ids;
}

std::vector<std::vector<int64_t>> Tokenizer::encode_batch(const std::vector<std::string>& texts) const {
  const auto n = static_cast<int64_t>(texts.size());
  std::vector<std::vector<int64_t>> out(texts.size());
  std::vector<std::string> errors(texts.size());
  // Each text is independent; the tokenizers are thread-safe. Errors are kept per text so the one reported is
  // the first in the batch, whatever the threads' order.
  at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      try {
        encode(texts[i], out[i]);
      } catch (const std::exception& e) {
        errors[i] = error_message(e);
        if (errors[i].empty()) errors[i] = "failed";
      }
    }
  });
  for (size_t i = 0; i < errors.size(); ++i) {
    if (!errors[i].empty()) throw TextError(i, errors[i]);
  }
  return out;
}

std::vector<int64_t> Tokenizer::frame(std::vector<int64_t> ids, int64_t context_length, bool truncate,
                                      size_t index) const {
  if (context_length < 2) fail("context length ", context_length, " cannot hold the start and end tokens (need >= 2)");
  ids.insert(ids.begin(), start_id());
  ids.push_back(end_id());
  if (static_cast<int64_t>(ids.size()) > context_length) {
    if (!truncate) {
      throw TextError(index, str(ids.size(), " tokens with start and end, more than the context length ",
                                 context_length, " (shorten it, or truncate)"));
    }
    ids.resize(static_cast<size_t>(context_length));
    ids.back() = end_id();  // as the reference: the last kept position holds the end token
  }
  return ids;
}

at::Tensor Tokenizer::tokenize(const std::vector<std::string>& texts, int64_t context_length, bool truncate) const {
  if (context_length < 2) fail("context length ", context_length, " cannot hold the start and end tokens (need >= 2)");
  const std::vector<std::vector<int64_t>> ids = encode_batch(texts);
  at::Tensor out = at::full({static_cast<int64_t>(texts.size()), context_length}, pad_id(), at::kLong);
  int64_t* data = out.data_ptr<int64_t>();
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::vector<int64_t> row = frame(ids[i], context_length, truncate, i);
    std::copy(row.begin(), row.end(), data + static_cast<int64_t>(i) * context_length);
  }
  return out;
}

}  // namespace clip
