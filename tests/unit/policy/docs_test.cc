// docs/policies.md stays true: every ```yaml block in it parses, the first one is the
// issue's example, and the documented error output is what the parser prints.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "policy/parser.h"
#include "tests/unit/policy/test_util.h"

#ifndef POLICY_DOCS
#error "POLICY_DOCS must name docs/policies.md"
#endif

namespace blocksnap::policy {
namespace {

std::string ReadDocs() {
  std::ifstream in(POLICY_DOCS);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The bodies of the fenced blocks whose info string is `lang`.
std::vector<std::string> Blocks(const std::string& text, const std::string& lang) {
  std::vector<std::string> out;
  const std::string open = "```" + lang + "\n";
  for (size_t pos = text.find(open); pos != std::string::npos; pos = text.find(open, pos)) {
    pos += open.size();
    size_t end = text.find("```\n", pos);
    if (end == std::string::npos) break;
    out.push_back(text.substr(pos, end - pos));
    pos = end + 4;
  }
  return out;
}

TEST(Docs, EveryYamlExampleParses) {
  std::string docs = ReadDocs();
  ASSERT_FALSE(docs.empty()) << POLICY_DOCS;
  std::vector<std::string> examples = Blocks(docs, "yaml");
  ASSERT_GE(examples.size(), 4u);
  size_t policies = 0;
  for (size_t i = 0; i < examples.size(); ++i) {
    ParsedFile f =
        ParsePolicyFile("example" + std::to_string(i) + ".yaml", examples[i], testing::Zones());
    EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.errors[0].ToString()) << "\n" << examples[i];
    policies += f.policies.size();
  }
  EXPECT_EQ(policies, 5u);
  EXPECT_EQ(examples[0].substr(0, 17), "name: db-nightly\n");
}

TEST(Docs, ErrorExampleIsWhatTheParserSays) {
  std::vector<std::string> text = Blocks(ReadDocs(), "text");
  ASSERT_EQ(text.size(), 1u);
  ParsedFile f = ParsePolicyFile("db.yaml",
                                 "name: p\nenabled: maybe\ntarget: {tags: {a: b}}\nschedules:\n"
                                 "  - {name: s, create: {every: 5x}, retain: {count: 0}}\n",
                                 testing::Zones());
  std::string printed;
  for (const Diagnostic& d : f.errors) printed += d.ToString() + "\n";
  EXPECT_EQ(printed, text[0]);
}

}  // namespace
}  // namespace blocksnap::policy
