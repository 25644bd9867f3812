// split_index and regexp_extract kernels checked against plain C++ references
// (and, for regexp_extract, against Arrow's own extract_regex): nulls, empty
// strings, sliced arrays, large_utf8, non-ASCII text, out-of-range and
// negative indexes, invalid patterns.
#include "sabot/functions/string_functions.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/compute/expression.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "sabot/api/datastream.h"

namespace sabot {
namespace {

namespace cp = arrow::compute;
using Strings = std::vector<std::optional<std::string>>;

class StringFunctionsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(InitializeRuntime().ok()); }
};

std::shared_ptr<arrow::Array> MakeStrings(const Strings& values, bool large = false) {
  std::shared_ptr<arrow::Array> out;
  if (large) {
    arrow::LargeStringBuilder b;
    for (const auto& v : values) EXPECT_TRUE((v ? b.Append(*v) : b.AppendNull()).ok());
    EXPECT_TRUE(b.Finish(&out).ok());
  } else {
    arrow::StringBuilder b;
    for (const auto& v : values) EXPECT_TRUE((v ? b.Append(*v) : b.AppendNull()).ok());
    EXPECT_TRUE(b.Finish(&out).ok());
  }
  return out;
}

Strings ToStrings(const arrow::Array& array) {
  Strings out;
  for (int64_t i = 0; i < array.length(); ++i) {
    if (array.IsNull(i)) {
      out.push_back(std::nullopt);
    } else if (array.type_id() == arrow::Type::LARGE_STRING) {
      out.push_back(
          std::string(static_cast<const arrow::LargeStringArray&>(array).GetView(i)));
    } else {
      out.push_back(
          std::string(static_cast<const arrow::StringArray&>(array).GetView(i)));
    }
  }
  return out;
}

// Flink's SPLIT_INDEX, written the obvious way.
std::optional<std::string> SplitReference(const std::optional<std::string>& s,
                                          const std::string& sep, int64_t index) {
  if (!s || s->empty() || index < 0) return std::nullopt;
  std::vector<std::string> fields;
  size_t begin = 0;
  for (;;) {
    size_t hit = s->find(sep, begin);
    if (hit == std::string::npos) {
      fields.push_back(s->substr(begin));
      break;
    }
    fields.push_back(s->substr(begin, hit - begin));
    begin = hit + sep.size();
  }
  if (index >= static_cast<int64_t>(fields.size())) return std::nullopt;
  return fields[index];
}

arrow::Result<std::shared_ptr<arrow::Array>> Call(const std::string& name,
                                                  std::shared_ptr<arrow::Array> strings,
                                                  const std::string& arg, int64_t n) {
  ARROW_ASSIGN_OR_RAISE(auto out, cp::CallFunction(name, {strings, arrow::MakeScalar(arg),
                                                          arrow::MakeScalar(n)}));
  return out.make_array();
}

const Strings kUrls = {
    "https://www.nexmark.com/abc/def/item.htm?query=1&channel_id=1234",
    std::nullopt,
    "",
    "/",
    "//",
    "a/b",
    "a/b/",
    "/a/b/c/d/e/f",
    "https://www.nexmark.com/ünï/cödé/ß?channel_id=é&x=1",
    "no separators at all",
    "channel_id=first&channel_id=second",
    "x&channel_id=",
    "xchannel_id=5&channel_id=6",
    "&&channel_id=7",
};

TEST_F(StringFunctionsTest, SplitIndexMatchesReference) {
  for (bool large : {false, true}) {
    auto urls = MakeStrings(kUrls, large);
    for (const std::string sep : {"/", "//", "channel_id", "é"}) {
      for (int64_t index : {-1, 0, 1, 2, 3, 4, 5, 6, 7, 100}) {
        auto out = Call("split_index", urls, sep, index);
        ASSERT_TRUE(out.ok()) << out.status().ToString();
        EXPECT_EQ((*out)->type_id(), urls->type_id());
        ASSERT_TRUE((*out)->ValidateFull().ok());
        Strings expected;
        for (const auto& u : kUrls) expected.push_back(SplitReference(u, sep, index));
        EXPECT_EQ(ToStrings(**out), expected) << "sep '" << sep << "' index " << index;
      }
    }
  }
}

TEST_F(StringFunctionsTest, SplitIndexOnSlicedInput) {
  auto urls = MakeStrings(kUrls);
  for (int64_t offset : {1, 3, 7}) {
    auto sliced = urls->Slice(offset, 5);
    auto out = Call("split_index", sliced, "/", 1);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ASSERT_TRUE((*out)->ValidateFull().ok());
    Strings expected;
    for (int64_t i = offset; i < offset + 5; ++i) {
      expected.push_back(SplitReference(kUrls[i], "/", 1));
    }
    EXPECT_EQ(ToStrings(**out), expected);
  }
}

TEST_F(StringFunctionsTest, SplitIndexNullArgumentsAndEmptySeparator) {
  auto urls = MakeStrings({"a/b", "c"});
  auto null_index = cp::CallFunction(
      "split_index",
      {urls, arrow::MakeScalar("/"), arrow::MakeNullScalar(arrow::int64())});
  ASSERT_TRUE(null_index.ok());
  EXPECT_EQ(null_index->make_array()->null_count(), 2);
  auto empty = Call("split_index", urls, "", 0);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("split_index"), std::string::npos);
}

TEST_F(StringFunctionsTest, SplitIndexColumnArguments) {
  auto urls = MakeStrings({"a/b", "c-d", "e/f", std::nullopt});
  auto seps = MakeStrings({"/", "-", std::nullopt, "/"});
  arrow::Int32Builder b;
  ASSERT_TRUE(b.AppendValues({1, 0, 1, 0}).ok());
  auto indexes = b.Finish().ValueOrDie();
  auto out = cp::CallFunction("split_index", {urls, seps, indexes});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(ToStrings(*out->make_array()),
            (Strings{"b", "c", std::nullopt, std::nullopt}));
}

TEST_F(StringFunctionsTest, FastPathPatterns) {
  struct Case {
    std::string pattern;
    int64_t group;
    bool fast;
  };
  for (const auto& c : std::vector<Case>{{"(&|^)channel_id=([^&]*)", 2, true},
                                         {"(&|^)channel_id=([^&]*)", 1, true},
                                         {"(&|^)channel_id=([^&]*)", 0, true},
                                         {"(^|&)channel_id=([^&]*)", 2, true},
                                         {"(?:&|^)channel_id=([^&]*)", 1, true},
                                         {"^https://([^/]*)", 1, true},
                                         {"channel_id=([^&#]*)", 1, true},
                                         {"item\\.htm", 0, true},
                                         {"(&|^)channel_id=([^&]+)", 2, false},
                                         {"channel_id=(\\d+)", 1, false},
                                         {"(?i)channel", 0, false},
                                         {"a.c", 0, false}}) {
    auto plan = PlanRegexpExtract(c.pattern, c.group);
    ASSERT_TRUE(plan.ok()) << c.pattern << ": " << plan.status().ToString();
    EXPECT_EQ(plan->fast, c.fast) << c.pattern;
  }
}

// regexp_extract against Arrow's extract_regex on the hand-named pattern: both
// for the fast path and for patterns that fall back.
TEST_F(StringFunctionsTest, RegexpExtractMatchesExtractRegex) {
  struct Case {
    std::string pattern;
    int64_t group;
    std::string named;  // the same, with only the requested group, named
  };
  const std::vector<Case> cases = {
      {"(&|^)channel_id=([^&]*)", 2, "(?:&|^)channel_id=(?P<g>[^&]*)"},
      {"(&|^)channel_id=([^&]*)", 1, "(?P<g>&|^)channel_id=(?:[^&]*)"},
      {"(&|^)channel_id=([^&]*)", 0, "(?P<g>(?:&|^)channel_id=(?:[^&]*))"},
      {"(^|&)channel_id=([^&]*)", 2, "(?:^|&)channel_id=(?P<g>[^&]*)"},
      {"^https://([^/]*)", 1, "^https://(?P<g>[^/]*)"},
      {"channel_id=([^&]*)", 1, "channel_id=(?P<g>[^&]*)"},
      {"cödé/([^?]*)", 1, "cödé/(?P<g>[^?]*)"},
      {"/([a-z]+)/([a-z]+)/", 2, "/(?:[a-z]+)/(?P<g>[a-z]+)/"},
      {"channel_id=(\\d+)", 1, "channel_id=(?P<g>\\d+)"},
      {"[(]?(?P<n>\\w+)=", 1, "[(]?(?P<g>\\w+)="},
  };
  for (bool large : {false, true}) {
    auto urls = MakeStrings(kUrls, large)->Slice(0);
    for (const auto& c : cases) {
      auto out = Call("regexp_extract", urls, c.pattern, c.group);
      ASSERT_TRUE(out.ok()) << c.pattern << ": " << out.status().ToString();
      ASSERT_TRUE((*out)->ValidateFull().ok());
      cp::ExtractRegexOptions options(c.named);
      auto reference = cp::CallFunction("extract_regex", {urls}, &options);
      ASSERT_TRUE(reference.ok()) << reference.status().ToString();
      auto field = std::static_pointer_cast<arrow::StructArray>(reference->make_array())
                       ->GetFlattenedField(0)
                       .ValueOrDie();
      EXPECT_EQ(ToStrings(**out), ToStrings(*field)) << c.pattern << " group " << c.group;
    }
  }
}

TEST_F(StringFunctionsTest, RegexpExtractExpectedValues) {
  auto urls = MakeStrings(kUrls)->Slice(9);  // offset != 0
  auto out = Call("regexp_extract", urls, "(&|^)channel_id=([^&]*)", 2);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(ToStrings(**out), (Strings{std::nullopt, "first", "", "6", "7"}));
  // The tie at position 0: the alternative written first wins.
  auto tie = MakeStrings({"&ab", "aab"});
  auto first = Call("regexp_extract", tie, "(a|^)a([^&]*)", 1);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(ToStrings(**first), (Strings{std::nullopt, "a"}));
  auto second = Call("regexp_extract", tie, "(^|a)a([^&]*)", 1);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(ToStrings(**second), (Strings{std::nullopt, ""}));
}

TEST_F(StringFunctionsTest, RegexpExtractErrorsNameFunctionAndPattern) {
  auto urls = MakeStrings({"a"});
  for (const auto& [pattern, group] : std::vector<std::pair<std::string, int64_t>>{
           {"(unclosed", 1}, {"a)", 0}, {"a{2,1}", 0}, {"(a)", 2}, {"(a)", -1}}) {
    auto out = Call("regexp_extract", urls, pattern, group);
    ASSERT_FALSE(out.ok()) << pattern;
    EXPECT_NE(out.status().message().find("regexp_extract"), std::string::npos)
        << out.status().ToString();
    EXPECT_NE(out.status().message().find(pattern), std::string::npos)
        << out.status().ToString();
  }
}

TEST_F(StringFunctionsTest, BindsInExpressions) {
  auto schema = arrow::schema({arrow::field("url", arrow::utf8())});
  auto urls = MakeStrings(kUrls);
  auto batch = arrow::RecordBatch::Make(schema, urls->length(), {urls});
  cp::Expression expr = cp::call(
      "split_index",
      {cp::field_ref("url"), cp::literal(std::string("/")), cp::literal(int64_t{3})});
  auto bound = expr.Bind(*schema);
  ASSERT_TRUE(bound.ok()) << bound.status().ToString();
  auto out = cp::ExecuteScalarExpression(*bound, cp::ExecBatch(*batch));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  Strings expected;
  for (const auto& u : kUrls) expected.push_back(SplitReference(u, "/", 3));
  EXPECT_EQ(ToStrings(*out->make_array()), expected);
}

}  // namespace
}  // namespace sabot
