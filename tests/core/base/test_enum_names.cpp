// The enum name tables (core/base/enum_names.h): names and values map both ways, misspellings and
// values outside the table are not found, and the choices list every name in table order.
#include "core/base/enum_names.h"

#include "core/base/dtype.h"

#include <gtest/gtest.h>

namespace {

enum class Colour { kRed, kGreen, kBlue, kUnlisted };
constexpr s3::EnumNames<Colour, 3> kColours{
    {{"red", Colour::kRed}, {"green", Colour::kGreen}, {"blue", Colour::kBlue}}};

TEST(EnumNames, RoundTripsEveryEntry) {
  for (const auto& entry : kColours) {
    EXPECT_EQ(s3::enum_name(kColours, entry.value), entry.name);
    EXPECT_EQ(s3::parse_enum(kColours, entry.name), entry.value);
  }
  static_assert(s3::parse_enum(kColours, "green") == Colour::kGreen);
}

TEST(EnumNames, RefusesWhatTheTableLacks) {
  EXPECT_FALSE(s3::parse_enum(kColours, "Red").has_value());  // spelled exactly
  EXPECT_FALSE(s3::parse_enum(kColours, "").has_value());
  EXPECT_FALSE(s3::parse_enum(kColours, "red ").has_value());
  EXPECT_EQ(s3::enum_name(kColours, Colour::kUnlisted), "");
}

TEST(EnumNames, ChoicesInTableOrder) {
  EXPECT_EQ(s3::enum_choices(kColours), "red | green | blue");
}

// The dtypes' one table: what model.json, sae.json and the dtype flags accept.
TEST(DTypeNames, AcceptsTheThreeStorageTypesOnly) {
  EXPECT_EQ(s3::parse_dtype("bfloat16"), s3::DType::kBFloat16);
  EXPECT_EQ(s3::enum_name(s3::kDTypeNames, s3::DType::kFloat16), "float16");
  for (const char* other : {"float64", "fp16", "bf16", "auto", "Float32", ""})
    EXPECT_FALSE(s3::parse_dtype(other).has_value()) << other;
  EXPECT_EQ(s3::dtype_choices(), "float32, bfloat16, float16");
}

}  // namespace
