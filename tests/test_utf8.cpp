// Bytes that are not UTF-8 (file names, captions) kept losslessly in JSON outputs as \xNN, and JSON input with
// bounded nesting.
#include <gtest/gtest.h>

#include <string>

#include "clip/util/error.h"
#include "clip/util/utf8.h"
#include "test_util.h"
#include "util/json.h"

namespace {

TEST(Utf8, ValidTextUnchangedInvalidBytesEscaped) {
  EXPECT_TRUE(clip::is_valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x88"));
  EXPECT_EQ(clip::utf8_or_escaped("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(clip::utf8_or_escaped("caf\xe9.jpg"), "caf\\xe9.jpg");  // Latin-1
  EXPECT_EQ(clip::utf8_or_escaped("\xc0\xaf"), "\\xc0\\xaf");         // overlong '/'
  EXPECT_EQ(clip::utf8_or_escaped("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a surrogate
  EXPECT_EQ(clip::utf8_or_escaped("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // past U+10FFFF
  EXPECT_EQ(clip::utf8_or_escaped("ab\xe2\x82"), "ab\\xe2\\x82");     // cut short
  EXPECT_FALSE(clip::is_valid_utf8("caf\xe9"));
}

TEST(Json, DumpKeepsNamesThatAreNotUtf8) {
  nlohmann::json j = {{"path", "photos/caf\xe9.jpg"}, {"caption", "ok"}};
  j["by\xff"] = {"x\xfe", 1};
  const std::string text = clip::dump_json(j);
  std::printf("[ output   ] %s\n", text.c_str());
  EXPECT_CONTAINS(text, R"("photos/caf\\xe9.jpg")");
  EXPECT_CONTAINS(text, R"("by\\xff":["x\\xfe",1])");
  EXPECT_EQ(clip::parse_json(text, "round trip")["caption"], "ok");
}

TEST(Json, NestingAndSyntaxErrorsAreOneLine) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_CONTAINS(clip::test::error_of([&] { clip::parse_json(deep, "deep.json"); }),
                  "deep.json: JSON nested deeper than 512 levels");
  EXPECT_TRUE(clip::parse_json_or_discarded(deep).is_discarded());
  const std::string brackets_in_strings = "[\"" + std::string(1000, '[') + "\"]";
  EXPECT_EQ(clip::parse_json(brackets_in_strings, "s").size(), 1u);
  const std::string message = clip::test::error_of([] { clip::parse_json("{\"a\": tru}", "config.json"); });
  EXPECT_CONTAINS(message, "config.json: not valid JSON: ");
  EXPECT_EQ(message.find('\n'), std::string::npos);
  EXPECT_EQ(message.find("[json.exception"), std::string::npos);
  // Found by fuzz/fuzz_json: a number beyond a double is nlohmann's out_of_range, not a parse_error; it is the same
  // one line, never an exception other than clip::Error.
  const std::string overflow = clip::test::error_of([] { clip::parse_json("[-2.5e7777777]", "big.json"); });
  EXPECT_CONTAINS(overflow, "big.json: not valid JSON: number overflow parsing '-2.5e7777777'");
}

}  // namespace
