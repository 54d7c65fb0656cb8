//===- StrictJsonTest.cpp - JSON parsing that refuses what others accept --===//

#include "moe/Support/StrictJson.h"

#include "gtest/gtest.h"

#include <string>

using mlir::moe::parseJsonStrictly;
using mlir::moe::StrictJson;

namespace {

/// The syntax error of `text`, or "<parsed>" when it parses.
std::string errorOf(llvm::StringRef text) {
  StrictJson parsed = parseJsonStrictly(text);
  if (parsed.duplicate)
    return describeDuplicate(*parsed.duplicate);
  return parsed.value ? "<parsed>" : parsed.syntaxError;
}

TEST(StrictJsonTest, ParsesOrdinaryDocuments) {
  StrictJson parsed =
      parseJsonStrictly(R"({"a": [1, 2.5, -3e10], "b": {"c": null}})");
  ASSERT_TRUE(parsed.value);
  EXPECT_TRUE(parsed.syntaxError.empty());
  EXPECT_EQ(*parsed.value->getAsObject()->getArray("a")->back().getAsNumber(),
            -3e10);
}

TEST(StrictJsonTest, RefusesNestingDeeperThanTheLimit) {
  std::string allowed(mlir::moe::kMaxJsonDepth, '[');
  allowed += std::string(mlir::moe::kMaxJsonDepth, ']');
  EXPECT_EQ(errorOf(allowed), "<parsed>");
  std::string tooDeep = "[" + allowed + "]";
  EXPECT_EQ(errorOf(tooDeep), "nesting deeper than 64 levels");
}

TEST(StrictJsonTest, RefusesDuplicateKeysAfterUnescaping) {
  EXPECT_EQ(errorOf(R"({"x": {"a": 1, "\u0061": 2}})"),
            "duplicate key 'a' in 'x'");
  EXPECT_EQ(errorOf(R"({"a": 1, "b": [{"c": 1, "c": 2}]})"),
            "duplicate key 'c' in 'b[0]'");
}

TEST(StrictJsonTest, RefusesNumbersBeyondTheRangeOfADouble) {
  // llvm::json reads these as infinities, which no JSON writer can write.
  EXPECT_EQ(errorOf(R"({"max_position_embeddings": 5E5555})"),
            "number out of the range of a double at "
            "'max_position_embeddings'");
  EXPECT_EQ(errorOf(R"({"rope": {"factors": [1.0, -1e999]}})"),
            "number out of the range of a double at 'rope.factors[1]'");
  EXPECT_EQ(errorOf("1e400"), "number out of the range of a double");
  // The largest doubles and integers beyond 64 bits still parse.
  EXPECT_EQ(errorOf("[1.7976931348623157e308, 18446744073709551616]"),
            "<parsed>");
}

} // namespace
