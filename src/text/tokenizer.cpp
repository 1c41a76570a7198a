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
  const Framing f = framing();
  const int64_t specials = int64_t(f.start) + int64_t(f.end);
  if (context_length < std::max<int64_t>(specials, 1)) {
    fail("context length ", context_length, " cannot hold the start and end tokens (need >= ", specials, ")");
  }
  if (static_cast<int64_t>(ids.size()) + specials > context_length) {
    if (!truncate) {
      throw TextError(index, str(ids.size() + size_t(specials), " tokens with start and end, more than the context ",
                                 "length ", context_length, " (shorten it, or truncate)"));
    }
    ids.resize(static_cast<size_t>(context_length - specials));  // as the references: the text is cut, not the end
  }
  if (f.start) ids.insert(ids.begin(), start_id());
  if (f.end) ids.push_back(end_id());
  return ids;
}

void Tokenizer::pad_into(const std::vector<int64_t>& framed, int64_t context_length, int64_t* row) const {
  const auto n = static_cast<int64_t>(framed.size());
  if (n > context_length) fail("pad_into: ", n, " ids do not fit a row of ", context_length);
  const int64_t pad = context_length - n;
  const int64_t first = framing().pad_left ? pad : 0;
  std::fill(row, row + context_length, pad_id());
  std::copy(framed.begin(), framed.end(), row + first);
}

at::Tensor Tokenizer::tokenize(const std::vector<std::string>& texts, int64_t context_length, bool truncate) const {
  const Framing f = framing();
  if (context_length < std::max<int64_t>(int64_t(f.start) + int64_t(f.end), 1)) {
    fail("context length ", context_length, " cannot hold the start and end tokens (need >= ",
         int64_t(f.start) + int64_t(f.end), ")");
  }
  const std::vector<std::vector<int64_t>> ids = encode_batch(texts);
  at::Tensor out = at::empty({static_cast<int64_t>(texts.size()), context_length}, at::kLong);
  int64_t* data = out.data_ptr<int64_t>();
  for (size_t i = 0; i < ids.size(); ++i) {
    pad_into(frame(ids[i], context_length, truncate, i), context_length, data + static_cast<int64_t>(i) * context_length);
  }
  return out;
}

}  // namespace clip
