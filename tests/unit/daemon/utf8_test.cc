// ValidUtf8: what sd-bus accepts as an 's' passes unchanged; every other byte becomes \xNN.
#include "util/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace blocksnap {
namespace {

TEST(Utf8, ValidTextIsUnchanged) {
  for (const std::string s :
       {"", "policy.yaml", "caf\xc3\xa9", "\xe2\x82\xac 5", "\xf0\x9f\x98\x80", "\xef\xbf\xbd"}) {
    EXPECT_TRUE(IsValidUtf8(s)) << s;
    EXPECT_EQ(ValidUtf8(s), s);
  }
}

TEST(Utf8, InvalidBytesAreEscaped) {
  EXPECT_EQ(ValidUtf8("br\xe9.yaml"), "br\\xe9.yaml");               // Latin-1 é
  EXPECT_EQ(ValidUtf8("\xc3"), "\\xc3");                             // truncated
  EXPECT_EQ(ValidUtf8("a\xc3(b"), "a\\xc3(b");                       // bad continuation
  EXPECT_EQ(ValidUtf8("\x80\xbf"), "\\x80\\xbf");                    // stray continuations
  EXPECT_EQ(ValidUtf8("\xc0\xaf"), "\\xc0\\xaf");                    // overlong '/'
  EXPECT_EQ(ValidUtf8("\xed\xa0\x80"), "\\xed\\xa0\\x80");           // a surrogate
  EXPECT_EQ(ValidUtf8("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // above U+10FFFF
  EXPECT_EQ(ValidUtf8("\xef\xbf\xbe"), "\\xef\\xbf\\xbe");           // U+FFFE
  EXPECT_EQ(ValidUtf8("\xef\xb7\x90"), "\\xef\\xb7\\x90");           // U+FDD0
  EXPECT_EQ(ValidUtf8(std::string("a\0b", 3)), "a\\x00b");           // NUL
  EXPECT_EQ(ValidUtf8("\xff caf\xc3\xa9"), "\\xff caf\xc3\xa9");     // valid parts kept
  EXPECT_FALSE(IsValidUtf8("br\xe9"));
  EXPECT_TRUE(IsValidUtf8(ValidUtf8("\xfe\xff\xc3")));
}

}  // namespace
}  // namespace blocksnap
