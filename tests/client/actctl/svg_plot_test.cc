#include "client/actctl/svg_plot.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/actctl/svg_reader.h"

namespace actserve {
namespace cli {
namespace {

using ::actserve::testing::IsWellFormedSvg;
using ::actserve::testing::SvgAttribute;
using ::actserve::testing::SvgNumbers;
using ::actserve::testing::SvgPathPoints;
using ::testing::Contains;
using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::FieldsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// x = -4, -3.5, ..., 4.
std::vector<double> HalfSteps() {
  std::vector<double> xs;
  for (int i = -8; i <= 8; ++i) xs.push_back(i / 2.0);
  return xs;
}

std::vector<PlotCurve> ReluCurves(const std::vector<double>& xs) {
  PlotCurve f{"relu", {}, 0, false}, df{"relu\u2032", {}, 0, true};
  for (double x : xs) {
    f.y.push_back(x > 0 ? x : 0);
    df.y.push_back(x > 0 ? 1 : 0);
  }
  return {f, df};
}

TEST(NiceTicksTest, StepsOfOneTwoOrFiveTimesAPowerOfTen) {
  EXPECT_THAT(NiceTicks(-4, 4, 8), ElementsAre(-4, -3, -2, -1, 0, 1, 2, 3, 4));
  EXPECT_THAT(NiceTicks(-0.24, 4.24, 6), ElementsAre(0, 1, 2, 3, 4));
  // (1 - -1) / 5 = 0.4 rounds to a step of 0.5; 1 / 5 = 0.2 is a step itself.
  EXPECT_THAT(NiceTicks(-1, 1, 5), ElementsAre(-1, -0.5, 0, 0.5, 1));
  EXPECT_THAT(NiceTicks(0, 1, 5), ElementsAre(0, DoubleNear(0.2, 1e-15), DoubleNear(0.4, 1e-15),
                                              DoubleNear(0.6, 1e-15), DoubleNear(0.8, 1e-15), 1));
  EXPECT_THAT(NiceTicks(0, 100, 4), ElementsAre(0, 20, 40, 60, 80, 100));
  // Zero is exactly zero, not -1e-17 from 3 * -0.1 + 0.3.
  const std::vector<double> tenths = NiceTicks(-0.3, 0.3, 6);
  ASSERT_THAT(tenths, Contains(0.0));
  EXPECT_TRUE(NiceTicks(1, 1, 5).empty());
}

TEST(SvgPlotTest, ReluPassesThroughTheRightPixels) {
  const std::vector<double> xs = HalfSteps();
  const std::vector<PlotCurve> curves = ReluCurves(xs);
  const PlotOptions options;  // 800 x 500, no title
  // By hand: the plot area is x 72..776 (margins 72 and 24), y 20..444 (margins 20 and
  // 56); x spans [-4, 4]; y spans relu's and relu''s values [0, 4], plus 6% of 4 = 0.24
  // above and below.
  const PlotFrame frame = ComputePlotFrame(xs, curves, options);
  EXPECT_EQ(frame.left, 72);
  EXPECT_EQ(frame.right, 776);
  EXPECT_EQ(frame.top, 20);
  EXPECT_EQ(frame.bottom, 444);
  EXPECT_EQ(frame.x_min, -4);
  EXPECT_EQ(frame.x_max, 4);
  EXPECT_DOUBLE_EQ(frame.y_min, -0.24);
  EXPECT_DOUBLE_EQ(frame.y_max, 4.24);
  // (0, 0): x = 72 + 4/8 * 704 = 424; y = 444 - 0.24/4.48 * 424 = 421.2857...
  // (2, 2): x = 72 + 6/8 * 704 = 600; y = 444 - 2.24/4.48 * 424 = 232.
  EXPECT_DOUBLE_EQ(frame.XToPixel(0), 424);
  EXPECT_NEAR(frame.YToPixel(0), 421.2857142857, 1e-9);
  EXPECT_DOUBLE_EQ(frame.XToPixel(2), 600);
  EXPECT_DOUBLE_EQ(frame.YToPixel(2), 232);

  absl::StatusOr<std::string> svg = RenderSvgPlot(xs, curves, options);
  ASSERT_TRUE(svg.ok()) << svg.status();
  const std::vector<std::pair<double, double>> relu = SvgPathPoints(*svg, "relu");
  ASSERT_EQ(relu.size(), xs.size());
  EXPECT_THAT(relu, Contains(FieldsAre(424.0, 421.29)));
  EXPECT_THAT(relu, Contains(FieldsAre(600.0, 232.0)));
  EXPECT_THAT(relu.front(), FieldsAre(72.0, 421.29));  // relu(-4) = 0
  EXPECT_THAT(relu.back(), FieldsAre(776.0, 42.71));   // relu(4) = 4: 444 - 4.24/4.48*424
  // relu' is 0 up to x = 0 (the kink's convention) and 1 after.
  const std::vector<std::pair<double, double>> slope = SvgPathPoints(*svg, "relu\u2032");
  ASSERT_EQ(slope.size(), xs.size());
  EXPECT_THAT(slope[8], FieldsAre(424.0, 421.29));
  // x = 0.5: 72 + 4.5/8 * 704 = 468; y = 1: 444 - 1.24/4.48 * 424 = 326.6428...
  EXPECT_THAT(slope[9], FieldsAre(468.0, 326.64));
  // f solid, f' dashed, in the same colour.
  EXPECT_EQ(SvgAttribute(*svg, "data-label=\"relu\"", "stroke-dasharray"), "");
  EXPECT_EQ(SvgAttribute(*svg, "data-label=\"relu\u2032\"", "stroke-dasharray"), "7 5");
  EXPECT_EQ(SvgAttribute(*svg, "data-label=\"relu\"", "stroke"), PlotColors()[0]);
  EXPECT_EQ(SvgAttribute(*svg, "data-label=\"relu\u2032\"", "stroke"), PlotColors()[0]);
  // The frame is published for readers.
  EXPECT_THAT(SvgNumbers(SvgAttribute(*svg, "class=\"plot-area\"", "data-x-range")),
              ElementsAre(-4, 4));
  EXPECT_THAT(SvgNumbers(SvgAttribute(*svg, "class=\"plot-area\"", "data-y-range")),
              ElementsAre(DoubleNear(-0.24, 1e-15), DoubleNear(4.24, 1e-15)));
}

TEST(SvgPlotTest, SoftplusAtZeroIsLnTwo) {
  std::vector<double> xs;
  for (int i = 0; i <= 400; ++i) xs.push_back(-4 + i * 0.02);
  xs.back() = 4;
  PlotCurve softplus{"softplus", {}, 1, false};
  for (double x : xs) softplus.y.push_back(std::log1p(std::exp(x)));
  const std::vector<PlotCurve> curves = {softplus};
  absl::StatusOr<std::string> svg = RenderSvgPlot(xs, curves, PlotOptions());
  ASSERT_TRUE(svg.ok()) << svg.status();
  // y spans [log1p(e^-4), log1p(e^4)] = [l, l + 4] (softplus(x) - softplus(-x) = x), plus
  // 0.24 on either side; softplus(0) = ln 2 lands at 444 - (ln 2 - l + 0.24)/4.48 * 424.
  const double l = std::log1p(std::exp(-4.0));
  const double expected_y = 444 - (std::log(2.0) - l + 0.24) / 4.48 * 424;
  const std::vector<std::pair<double, double>> points = SvgPathPoints(*svg, "softplus");
  ASSERT_EQ(points.size(), 401u);
  EXPECT_DOUBLE_EQ(points[200].first, 424);
  EXPECT_NEAR(points[200].second, expected_y, 0.005);
  EXPECT_EQ(SvgAttribute(*svg, "data-label=\"softplus\"", "stroke"), PlotColors()[1]);
}

TEST(SvgPlotTest, IsWellFormedXmlWithLegendAxesAndEscapedText) {
  const std::vector<double> xs = HalfSteps();
  std::vector<PlotCurve> curves = ReluCurves(xs);
  curves.push_back({"a<b & \"c\"", std::vector<double>(xs.size(), 0.5), 2, false});
  PlotOptions options;
  options.title = "f(x) & f\u2032(x) <both>";
  absl::StatusOr<std::string> svg = RenderSvgPlot(xs, curves, options);
  ASSERT_TRUE(svg.ok()) << svg.status();
  EXPECT_THAT(*svg, HasSubstr("a&lt;b &amp; &quot;c&quot;"));
  EXPECT_THAT(*svg, HasSubstr(">f(x) &amp; f\u2032(x) &lt;both&gt;</text>"));
  // The legend names every curve; tick labels run -4..4 on x and 0..4 on y, with a
  // real minus sign.
  EXPECT_THAT(*svg, HasSubstr("class=\"legend\""));
  EXPECT_THAT(*svg, HasSubstr(">relu</text>"));
  EXPECT_THAT(*svg, HasSubstr(">relu\u2032</text>"));
  EXPECT_THAT(*svg, HasSubstr(">\u22124</text>"));
  EXPECT_THAT(*svg, HasSubstr(">4</text>"));
  EXPECT_THAT(*svg, Not(HasSubstr(">-0</text>")));
  // With a title the plot area starts lower.
  EXPECT_EQ(SvgAttribute(*svg, "class=\"plot-area\"", "y"), "48.00");

  if (access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3 to parse XML";
  const std::string path = ::testing::TempDir() + "/svg_plot_test.svg";
  std::ofstream(path, std::ios::binary | std::ios::trunc) << *svg;
  EXPECT_TRUE(IsWellFormedSvg(path));
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      << "<svg xmlns=\"http://www.w3.org/2000/svg\"><g></svg>";
  EXPECT_FALSE(IsWellFormedSvg(path));  // the checker does check (its error goes to stderr)
  std::remove(path.c_str());
}

TEST(SvgPlotTest, NonFiniteValuesLeaveAGap) {
  const std::vector<double> xs = {-1, 0, 1, 2};
  const std::vector<PlotCurve> curves = {{"gappy", {1, std::nan(""), 2, 3}, 0, false}};
  absl::StatusOr<std::string> svg = RenderSvgPlot(xs, curves, PlotOptions());
  ASSERT_TRUE(svg.ok()) << svg.status();
  const std::string d = SvgAttribute(*svg, "data-label=\"gappy\"", "d");
  EXPECT_EQ(std::count(d.begin(), d.end(), 'M'), 2) << d;
  EXPECT_EQ(std::count(d.begin(), d.end(), 'L'), 1) << d;
}

TEST(SvgPlotTest, RefusesWhatCannotBePlotted) {
  const std::vector<PlotCurve> one = {{"c", {1}, 0, false}};
  EXPECT_EQ(RenderSvgPlot(std::vector<double>{0}, one, PlotOptions()).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<PlotCurve> two = {{"c", {1, 2}, 0, false}};
  EXPECT_EQ(RenderSvgPlot(std::vector<double>{1, 1}, two, PlotOptions()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RenderSvgPlot(std::vector<double>{0, 1, 2}, two, PlotOptions()).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<PlotCurve> nans = {{"c", {std::nan(""), INFINITY}, 0, false}};
  EXPECT_EQ(RenderSvgPlot(std::vector<double>{0, 1}, nans, PlotOptions()).status().code(),
            absl::StatusCode::kInvalidArgument);
  PlotOptions tiny;
  tiny.width = 10;
  EXPECT_EQ(RenderSvgPlot(std::vector<double>{0, 1}, two, tiny).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A flat curve still gets a y range.
  const std::vector<PlotCurve> flat = {{"c", {3, 3}, 0, false}};
  const PlotFrame frame = ComputePlotFrame(std::vector<double>{0, 1}, flat, PlotOptions());
  EXPECT_DOUBLE_EQ(frame.y_min, 2 - 0.12);
  EXPECT_DOUBLE_EQ(frame.y_max, 4 + 0.12);
}

}  // namespace
}  // namespace cli
}  // namespace actserve
