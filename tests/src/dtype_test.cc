// src/dtype.h: names and sizes, and the half-precision conversions, checked exhaustively
// over all 65536 bit patterns, at every rounding midpoint, at the overflow thresholds and
// in the subnormal range, against bit-level decoders and an independent rounding
// (tests/oracle/reference.h) and a classic bit-twiddling float -> bfloat16.
#include "src/dtype.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>

#include "gtest/gtest.h"
#include "tests/oracle/reference.h"

namespace actserve {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool IsHalfNaN(uint16_t b) { return (b & 0x7C00) == 0x7C00 && (b & 0x03FF) != 0; }
bool IsBFloat16NaN(uint16_t b) { return (b & 0x7F80) == 0x7F80 && (b & 0x007F) != 0; }

TEST(DTypeTest, NamesSizesAndParsing) {
  ASSERT_EQ(AllDTypes().size(), 4u);
  EXPECT_EQ(AllDTypes()[0], DType::kFloat32);
  EXPECT_EQ(AllDTypes()[1], DType::kFloat64);
  EXPECT_EQ(AllDTypes()[2], DType::kFloat16);
  EXPECT_EQ(AllDTypes()[3], DType::kBFloat16);
  EXPECT_EQ(DTypeSize(DType::kFloat32), 4u);
  EXPECT_EQ(DTypeSize(DType::kFloat64), 8u);
  EXPECT_EQ(DTypeSize(DType::kFloat16), 2u);
  EXPECT_EQ(DTypeSize(DType::kBFloat16), 2u);
  EXPECT_EQ(DTypeSize(DType::kUnspecified), 0u);
  EXPECT_EQ(DTypeName(DType::kFloat32), "float32");
  EXPECT_EQ(DTypeName(DType::kFloat64), "float64");
  EXPECT_EQ(DTypeName(DType::kFloat16), "float16");
  EXPECT_EQ(DTypeName(DType::kBFloat16), "bfloat16");
  EXPECT_EQ(DTypeName(DType::kUnspecified), "unspecified");
  const std::pair<const char*, DType> names[] = {
      {"float32", DType::kFloat32}, {"f32", DType::kFloat32},   {"float", DType::kFloat32},
      {"float64", DType::kFloat64}, {"f64", DType::kFloat64},   {"double", DType::kFloat64},
      {"float16", DType::kFloat16}, {"f16", DType::kFloat16},   {"half", DType::kFloat16},
      {"bfloat16", DType::kBFloat16}, {"bf16", DType::kBFloat16},
  };
  for (const auto& [name, want] : names) {
    DType got = DType::kUnspecified;
    EXPECT_TRUE(ParseDType(name, &got)) << name;
    EXPECT_EQ(got, want) << name;
  }
  DType d = DType::kFloat32;
  EXPECT_FALSE(ParseDType("int8", &d));
  EXPECT_FALSE(ParseDType("", &d));
  EXPECT_FALSE(ParseDType("unspecified", &d));
}

TEST(DTypeTest, HeaderExample) {
  EXPECT_EQ(RoundToFloat16(0.1), 0x2E66);
  EXPECT_EQ(Float16ToDouble(0x2E66), 0.0999755859375);
}

// Decode agrees with a bit-level decoder, and encode(decode(b)) == b for every non-NaN
// pattern (including -0, subnormals and +-Inf).
TEST(DTypeTest, Float16ExhaustiveRoundTrip) {
  for (uint32_t b = 0; b <= 0xFFFF; ++b) {
    const uint16_t bits = static_cast<uint16_t>(b);
    const double v = Float16ToDouble(bits);
    if (IsHalfNaN(bits)) {
      ASSERT_TRUE(std::isnan(v)) << std::hex << b;
      ASSERT_TRUE(IsHalfNaN(RoundToFloat16(v))) << std::hex << b;
      continue;
    }
    ASSERT_EQ(v, static_cast<double>(ref::DecodeHalf(bits))) << std::hex << b;
    ASSERT_EQ(std::signbit(v), (b & 0x8000) != 0) << std::hex << b;
    ASSERT_EQ(RoundToFloat16(v), bits) << std::hex << b;
  }
}

TEST(DTypeTest, BFloat16ExhaustiveRoundTrip) {
  for (uint32_t b = 0; b <= 0xFFFF; ++b) {
    const uint16_t bits = static_cast<uint16_t>(b);
    const double v = BFloat16ToDouble(bits);
    if (IsBFloat16NaN(bits)) {
      ASSERT_TRUE(std::isnan(v)) << std::hex << b;
      ASSERT_TRUE(IsBFloat16NaN(RoundToBFloat16(v))) << std::hex << b;
      continue;
    }
    // bfloat16 is the top half of a float32.
    const uint32_t f32_bits = b << 16;
    float f;
    std::memcpy(&f, &f32_bits, 4);
    ASSERT_EQ(v, static_cast<double>(f)) << std::hex << b;
    ASSERT_EQ(v, static_cast<double>(ref::DecodeBFloat16(bits))) << std::hex << b;
    ASSERT_EQ(RoundToBFloat16(v), bits) << std::hex << b;
  }
}

// Between every two adjacent finite values a < b of the format (both signs): the exact
// midpoint goes to the one with an even significand; one double-ulp either side of it goes
// to the nearer one.
template <typename Encode, typename Decode>
void CheckMidpoints(Encode encode, Decode decode, uint16_t largest_finite, const char* what) {
  for (uint16_t sign : {uint16_t{0}, uint16_t{0x8000}}) {
    for (uint16_t b = 0; b < largest_finite; ++b) {
      const uint16_t lo_bits = sign | b, hi_bits = sign | static_cast<uint16_t>(b + 1);
      const double lo = decode(lo_bits), hi = decode(hi_bits);
      const double mid = (lo + hi) / 2;  // exact: two more bits than the format has
      ASSERT_EQ(mid - lo, hi - mid);
      const uint16_t even = (b & 1) == 0 ? lo_bits : hi_bits;
      ASSERT_EQ(encode(mid), even) << what << " midpoint of " << std::hex << lo_bits;
      ASSERT_EQ(encode(std::nextafter(mid, lo)), lo_bits) << what << " " << std::hex << lo_bits;
      ASSERT_EQ(encode(std::nextafter(mid, hi)), hi_bits) << what << " " << std::hex << lo_bits;
    }
  }
}

TEST(DTypeTest, Float16RoundsToNearestTiesToEven) {
  CheckMidpoints(RoundToFloat16, ref::DecodeHalf, 0x7BFF, "float16");
}

TEST(DTypeTest, BFloat16RoundsToNearestTiesToEven) {
  CheckMidpoints(RoundToBFloat16, ref::DecodeBFloat16, 0x7F7F, "bfloat16");
}

TEST(DTypeTest, Float16OverflowAndSpecials) {
  EXPECT_EQ(RoundToFloat16(65504), 0x7BFF);                         // the largest finite
  EXPECT_EQ(RoundToFloat16(65520), 0x7C00);                         // midpoint to 2^16: even
  EXPECT_EQ(RoundToFloat16(std::nextafter(65520.0, 0)), 0x7BFF);   // just below: finite
  EXPECT_EQ(RoundToFloat16(-65520), 0xFC00);
  EXPECT_EQ(RoundToFloat16(-std::nextafter(65520.0, 0)), 0xFBFF);
  EXPECT_EQ(RoundToFloat16(1e300), 0x7C00);
  EXPECT_EQ(RoundToFloat16(kInf), 0x7C00);
  EXPECT_EQ(RoundToFloat16(-kInf), 0xFC00);
  EXPECT_EQ(RoundToFloat16(0.0), 0x0000);
  EXPECT_EQ(RoundToFloat16(-0.0), 0x8000);
  EXPECT_TRUE(IsHalfNaN(RoundToFloat16(kNaN)));
  EXPECT_TRUE(IsHalfNaN(RoundToFloat16(-kNaN)));
  EXPECT_TRUE(std::isnan(Float16ToDouble(0x7E00)));
  EXPECT_TRUE(std::isnan(Float16ToDouble(0x7C01)));  // signalling pattern: still NaN
  EXPECT_EQ(Float16ToDouble(0x7C00), kInf);
  EXPECT_EQ(Float16ToDouble(0xFC00), -kInf);
  // A quiet NaN: the top mantissa bit set.
  EXPECT_NE(RoundToFloat16(kNaN) & 0x0200, 0);
}

TEST(DTypeTest, Float16Subnormals) {
  const double min_sub = std::ldexp(1.0, -24);
  EXPECT_EQ(Float16ToDouble(0x0001), min_sub);
  EXPECT_EQ(Float16ToDouble(0x03FF), 1023 * min_sub);  // the largest subnormal
  EXPECT_EQ(Float16ToDouble(0x0400), std::ldexp(1.0, -14));  // the smallest normal
  EXPECT_EQ(RoundToFloat16(min_sub), 0x0001);
  EXPECT_EQ(RoundToFloat16(min_sub / 2), 0x0000);  // tie between 0 and 1: even
  EXPECT_EQ(RoundToFloat16(-min_sub / 2), 0x8000);
  EXPECT_EQ(RoundToFloat16(std::nextafter(min_sub / 2, 1)), 0x0001);
  EXPECT_EQ(RoundToFloat16(1.5 * min_sub), 0x0002);  // tie between 1 and 2: even
  EXPECT_EQ(RoundToFloat16(2.5 * min_sub), 0x0002);  // tie between 2 and 3: even
  EXPECT_EQ(RoundToFloat16(1e-300), 0x0000);
  EXPECT_EQ(RoundToFloat16(-1e-300), 0x8000);
  EXPECT_EQ(RoundToFloat16(1023.5 * min_sub), 0x0400);  // tie: rounds up into normals
}

TEST(DTypeTest, BFloat16OverflowAndSubnormals) {
  const double max = std::ldexp(2 - std::ldexp(1.0, -7), 127);
  const double mid_to_inf = std::ldexp(2 - std::ldexp(1.0, -8), 127);
  EXPECT_EQ(RoundToBFloat16(max), 0x7F7F);
  EXPECT_EQ(RoundToBFloat16(mid_to_inf), 0x7F80);
  EXPECT_EQ(RoundToBFloat16(std::nextafter(mid_to_inf, 0)), 0x7F7F);
  EXPECT_EQ(RoundToBFloat16(-mid_to_inf), 0xFF80);
  EXPECT_EQ(RoundToBFloat16(1e300), 0x7F80);
  const double min_sub = std::ldexp(1.0, -133);
  EXPECT_EQ(BFloat16ToDouble(0x0001), min_sub);
  EXPECT_EQ(RoundToBFloat16(min_sub), 0x0001);
  EXPECT_EQ(RoundToBFloat16(min_sub / 2), 0x0000);
  EXPECT_EQ(RoundToBFloat16(std::nextafter(min_sub / 2, 1)), 0x0001);
  EXPECT_EQ(RoundToBFloat16(1.5 * min_sub), 0x0002);
  EXPECT_EQ(RoundToBFloat16(-0.0), 0x8000);
  EXPECT_TRUE(IsBFloat16NaN(RoundToBFloat16(kNaN)));
  EXPECT_NE(RoundToBFloat16(kNaN) & 0x0040, 0);  // quiet
}

// One rounding from double, never via float: 1 + 2^-11 + 2^-40 is just above the float16
// midpoint between 1 and 1 + 2^-10, so it rounds up; through float it would first become
// the midpoint itself and then round to even (down).
TEST(DTypeTest, RoundsOnceFromDouble) {
  EXPECT_EQ(RoundToFloat16(1 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40)), 0x3C01);
  EXPECT_EQ(RoundToBFloat16(1 + std::ldexp(1.0, -8) + std::ldexp(1.0, -40)), 0x3F81);
  EXPECT_EQ(RoundToFloat16(-(1 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40))), 0xBC01);
}

// Random doubles over the whole exponent range (and near the formats' ranges) against the
// independent rounding of tests/oracle/reference.h.
TEST(DTypeTest, RandomDoublesMatchIndependentRounding) {
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<int> exponent(-160, 140);
  std::uniform_real_distribution<double> mantissa(1, 2);
  for (int i = 0; i < 400000; ++i) {
    double v = std::ldexp(mantissa(rng), exponent(rng));
    if (i & 1) v = -v;
    const uint16_t h = RoundToFloat16(v);
    const uint16_t want_h = ref::EncodeHalf(ref::RoundTo(DType::kFloat16, v));
    ASSERT_EQ(h, want_h) << std::hexfloat << v;
    const uint16_t b = RoundToBFloat16(v);
    const uint16_t want_b = ref::EncodeBFloat16(ref::RoundTo(DType::kBFloat16, v));
    ASSERT_EQ(b, want_b) << std::hexfloat << v;
  }
}

// float -> bfloat16 by the classic bit trick (add 0x7FFF plus the lowest kept bit, then
// truncate), over a stride through all 2^32 float patterns.
TEST(DTypeTest, FloatToBFloat16MatchesBitTwiddling) {
  for (uint64_t b = 0; b <= 0xFFFFFFFFu; b += 251) {
    const uint32_t bits = static_cast<uint32_t>(b);
    float f;
    std::memcpy(&f, &bits, 4);
    const uint16_t got = RoundToBFloat16(f);
    if (std::isnan(f)) {
      ASSERT_TRUE(IsBFloat16NaN(got)) << std::hex << bits;
      continue;
    }
    const uint32_t rounded = bits + 0x7FFF + ((bits >> 16) & 1);
    ASSERT_EQ(got, static_cast<uint16_t>(rounded >> 16)) << std::hex << bits;
  }
}

}  // namespace
}  // namespace actserve
