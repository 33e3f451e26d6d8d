#include "client/actctl/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace actserve {
namespace cli {
namespace {

constexpr int kMinWidth = 200;
constexpr int kMinHeight = 150;
// Margins around the plot area, in pixels: room for the y tick labels and the rotated y
// label on the left, the x tick labels and x label below, the title above.
constexpr double kLeftMargin = 72;
constexpr double kRightMargin = 24;
constexpr double kTopMargin = 20;
constexpr double kTopMarginWithTitle = 48;
constexpr double kBottomMargin = 56;
// Fraction of the values' spread left free above and below the curves.
constexpr double kYPadding = 0.06;
constexpr double kTickLength = 5;

constexpr absl::string_view kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string EscapeXml(absl::string_view text) {
  std::string escaped;
  for (char c : text) {
    switch (c) {
      case '&':
        escaped += "&amp;";
        break;
      case '<':
        escaped += "&lt;";
        break;
      case '>':
        escaped += "&gt;";
        break;
      case '"':
        escaped += "&quot;";
        break;
      default:
        escaped += c;
    }
  }
  return escaped;
}

// A pixel coordinate: two decimals are far below what a screen shows.
std::string Px(double value) { return absl::StrFormat("%.2f", value); }

// The spacing of `ticks` (or 1 when there is only one).
double TickStep(const std::vector<double>& ticks) {
  return ticks.size() >= 2 ? ticks[1] - ticks[0] : 1.0;
}

// A tick label with as many decimals as the step needs: "-0.5", "2", "0.25".
std::string TickLabel(double value, double step) {
  const int decimals = std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
  std::string label = absl::StrFormat("%.*f", decimals, value);
  if (label.find_first_not_of("-0.") == std::string::npos) label = "0";  // no "-0"
  // A real minus sign reads better than a hyphen in a figure.
  if (label[0] == '-') label = "\u2212" + label.substr(1);
  return label;
}

}  // namespace

absl::Span<const absl::string_view> PlotColors() { return kColors; }

std::vector<double> NiceTicks(double lo, double hi, int target) {
  std::vector<double> ticks;
  if (!(hi > lo) || target < 1) return ticks;
  const double raw = (hi - lo) / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double normalized = raw / magnitude;
  // The nice multiple nearest to `normalized` (in 1..10), on a logarithmic scale.
  double multiple = 10;
  if (normalized < 1.5) {
    multiple = 1;
  } else if (normalized < 3) {
    multiple = 2;
  } else if (normalized < 7) {
    multiple = 5;
  }
  const double step = multiple * magnitude;
  // Multiples of the step computed from an integer index, so that errors do not add up.
  const double first = std::ceil(lo / step - 1e-9);
  for (double k = first; k * step <= hi + step * 1e-9; ++k) {
    const double value = k * step;
    ticks.push_back(std::abs(value) < step * 1e-9 ? 0.0 : value);
  }
  return ticks;
}

PlotFrame ComputePlotFrame(absl::Span<const double> xs, absl::Span<const PlotCurve> curves,
                           const PlotOptions& options) {
  PlotFrame frame;
  frame.x_min = xs.front();
  frame.x_max = xs.back();
  double lo = std::numeric_limits<double>::infinity();
  double hi = -lo;
  for (const PlotCurve& curve : curves) {
    for (double y : curve.y) {
      if (!std::isfinite(y)) continue;
      lo = std::min(lo, y);
      hi = std::max(hi, y);
    }
  }
  if (!(hi > lo)) {
    lo -= 1;
    hi += 1;
  }
  const double pad = (hi - lo) * kYPadding;
  frame.y_min = lo - pad;
  frame.y_max = hi + pad;
  frame.left = kLeftMargin;
  frame.right = options.width - kRightMargin;
  frame.top = options.title.empty() ? kTopMargin : kTopMarginWithTitle;
  frame.bottom = options.height - kBottomMargin;
  return frame;
}

absl::StatusOr<std::string> RenderSvgPlot(absl::Span<const double> xs,
                                          absl::Span<const PlotCurve> curves,
                                          const PlotOptions& options) {
  if (options.width < kMinWidth || options.height < kMinHeight) {
    return absl::InvalidArgumentError(absl::StrCat("a plot needs at least ", kMinWidth, "x",
                                                   kMinHeight, " pixels, got ", options.width, "x",
                                                   options.height));
  }
  if (xs.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("a plot needs at least 2 x values, got ", xs.size()));
  }
  for (size_t i = 0; i < xs.size(); ++i) {
    if (!std::isfinite(xs[i]) || (i > 0 && !(xs[i] > xs[i - 1]))) {
      return absl::InvalidArgumentError(
          absl::StrCat("x values must be finite and increasing; x[", i, "] = ", xs[i]));
    }
  }
  bool any_finite = false;
  for (const PlotCurve& curve : curves) {
    if (curve.y.size() != xs.size()) {
      return absl::InvalidArgumentError(absl::StrCat("curve '", curve.label, "' has ",
                                                     curve.y.size(), " values for ", xs.size(),
                                                     " x values"));
    }
    any_finite = any_finite || std::any_of(curve.y.begin(), curve.y.end(),
                                           [](double y) { return std::isfinite(y); });
  }
  if (!any_finite) return absl::InvalidArgumentError("no curve has a finite value to plot");

  const PlotFrame frame = ComputePlotFrame(xs, curves, options);
  const double plot_width = frame.right - frame.left;
  const double plot_height = frame.bottom - frame.top;
  const std::vector<double> x_ticks =
      NiceTicks(frame.x_min, frame.x_max, std::max(2, static_cast<int>(plot_width / 80)));
  const std::vector<double> y_ticks =
      NiceTicks(frame.y_min, frame.y_max, std::max(2, static_cast<int>(plot_height / 60)));

  std::string svg = absl::StrFormat(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
      "viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" "
      "font-size=\"13\">\n",
      options.width, options.height, options.width, options.height);
  if (!options.title.empty())
    absl::StrAppend(&svg, "<title>", EscapeXml(options.title), "</title>\n");
  absl::StrAppend(&svg, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
  absl::StrAppend(&svg, "<defs><clipPath id=\"plot-clip\"><rect x=\"", Px(frame.left), "\" y=\"",
                  Px(frame.top), "\" width=\"", Px(plot_width), "\" height=\"", Px(plot_height),
                  "\"/></clipPath></defs>\n");

  // Grid at every tick, then the axes through 0 where 0 is in range.
  absl::StrAppend(&svg, "<g class=\"grid\" stroke=\"#e8e8e8\" stroke-width=\"1\">\n");
  for (double x : x_ticks) {
    absl::StrAppend(&svg, "<line x1=\"", Px(frame.XToPixel(x)), "\" y1=\"", Px(frame.top),
                    "\" x2=\"", Px(frame.XToPixel(x)), "\" y2=\"", Px(frame.bottom), "\"/>\n");
  }
  for (double y : y_ticks) {
    absl::StrAppend(&svg, "<line x1=\"", Px(frame.left), "\" y1=\"", Px(frame.YToPixel(y)),
                    "\" x2=\"", Px(frame.right), "\" y2=\"", Px(frame.YToPixel(y)), "\"/>\n");
  }
  absl::StrAppend(&svg, "</g>\n<g class=\"zero-axes\" stroke=\"#9a9a9a\" stroke-width=\"1\">\n");
  if (frame.x_min < 0 && frame.x_max > 0) {
    absl::StrAppend(&svg, "<line x1=\"", Px(frame.XToPixel(0)), "\" y1=\"", Px(frame.top),
                    "\" x2=\"", Px(frame.XToPixel(0)), "\" y2=\"", Px(frame.bottom), "\"/>\n");
  }
  if (frame.y_min < 0 && frame.y_max > 0) {
    absl::StrAppend(&svg, "<line x1=\"", Px(frame.left), "\" y1=\"", Px(frame.YToPixel(0)),
                    "\" x2=\"", Px(frame.right), "\" y2=\"", Px(frame.YToPixel(0)), "\"/>\n");
  }
  absl::StrAppend(&svg, "</g>\n");

  // Ticks and their labels, outside the plot area.
  absl::StrAppend(&svg, "<g class=\"ticks\" stroke=\"#333333\" stroke-width=\"1\">\n");
  for (double x : x_ticks) {
    absl::StrAppend(&svg, "<line x1=\"", Px(frame.XToPixel(x)), "\" y1=\"", Px(frame.bottom),
                    "\" x2=\"", Px(frame.XToPixel(x)), "\" y2=\"", Px(frame.bottom + kTickLength),
                    "\"/>\n");
  }
  for (double y : y_ticks) {
    absl::StrAppend(&svg, "<line x1=\"", Px(frame.left - kTickLength), "\" y1=\"",
                    Px(frame.YToPixel(y)), "\" x2=\"", Px(frame.left), "\" y2=\"",
                    Px(frame.YToPixel(y)), "\"/>\n");
  }
  absl::StrAppend(&svg, "</g>\n<g class=\"tick-labels\" fill=\"#333333\">\n");
  for (double x : x_ticks) {
    absl::StrAppend(&svg, "<text x=\"", Px(frame.XToPixel(x)), "\" y=\"",
                    Px(frame.bottom + kTickLength + 15), "\" text-anchor=\"middle\">",
                    TickLabel(x, TickStep(x_ticks)), "</text>\n");
  }
  for (double y : y_ticks) {
    absl::StrAppend(&svg, "<text x=\"", Px(frame.left - kTickLength - 4), "\" y=\"",
                    Px(frame.YToPixel(y) + 4.5), "\" text-anchor=\"end\">",
                    TickLabel(y, TickStep(y_ticks)), "</text>\n");
  }
  absl::StrAppend(&svg, "</g>\n");

  // Axis labels and title.
  absl::StrAppend(&svg, "<text class=\"x-label\" x=\"", Px(frame.left + plot_width / 2), "\" y=\"",
                  Px(options.height - 12.0),
                  "\" text-anchor=\"middle\" font-size=\"15\" font-style=\"italic\">",
                  EscapeXml(options.x_label), "</text>\n");
  absl::StrAppend(&svg, "<text class=\"y-label\" x=\"0\" y=\"0\" transform=\"translate(", Px(20.0),
                  " ", Px(frame.top + plot_height / 2),
                  ") rotate(-90)\" text-anchor=\"middle\" font-size=\"15\" "
                  "font-style=\"italic\">",
                  EscapeXml(options.y_label), "</text>\n");
  if (!options.title.empty()) {
    absl::StrAppend(&svg, "<text class=\"title\" x=\"", Px(frame.left + plot_width / 2),
                    "\" y=\"30\" text-anchor=\"middle\" font-size=\"17\">",
                    EscapeXml(options.title), "</text>\n");
  }

  // The curves, clipped to the plot area; a non-finite value starts a new piece.
  absl::StrAppend(&svg,
                  "<g class=\"curves\" clip-path=\"url(#plot-clip)\" fill=\"none\" "
                  "stroke-width=\"2.2\" stroke-linejoin=\"round\" "
                  "stroke-linecap=\"round\">\n");
  for (const PlotCurve& curve : curves) {
    std::string path;
    bool pen_down = false;
    for (size_t i = 0; i < xs.size(); ++i) {
      if (!std::isfinite(curve.y[i])) {
        pen_down = false;
        continue;
      }
      absl::StrAppend(&path, path.empty() ? "" : " ", pen_down ? "L" : "M",
                      Px(frame.XToPixel(xs[i])), ",", Px(frame.YToPixel(curve.y[i])));
      pen_down = true;
    }
    const absl::string_view color = kColors[static_cast<size_t>(curve.color) % std::size(kColors)];
    absl::StrAppend(&svg, "<path class=\"curve\" data-label=\"", EscapeXml(curve.label),
                    "\" stroke=\"", color, "\"", curve.dashed ? " stroke-dasharray=\"7 5\"" : "",
                    " d=\"", path, "\"/>\n");
  }
  absl::StrAppend(&svg, "</g>\n");

  // The frame, drawn over the curves' ends, with the data ranges for readers.
  absl::StrAppend(&svg, "<rect class=\"plot-area\" x=\"", Px(frame.left), "\" y=\"", Px(frame.top),
                  "\" width=\"", Px(plot_width), "\" height=\"", Px(plot_height),
                  "\" fill=\"none\" stroke=\"#333333\" stroke-width=\"1\" data-x-range=\"",
                  absl::StrFormat("%.17g %.17g", frame.x_min, frame.x_max), "\" data-y-range=\"",
                  absl::StrFormat("%.17g %.17g", frame.y_min, frame.y_max), "\"/>\n");

  // Legend in a corner, on a white box so grid lines do not cross the text.
  if (!curves.empty()) {
    constexpr double kRowHeight = 20, kSample = 30, kPadding = 8;
    size_t longest = 0;
    for (const PlotCurve& curve : curves) longest = std::max(longest, curve.label.size());
    const double box_width = kPadding * 3 + kSample + 7.5 * static_cast<double>(longest);
    const double box_height = kPadding * 2 + kRowHeight * static_cast<double>(curves.size()) - 4;
    // The corner whose box covers the fewest curve points, top-left on a tie.
    constexpr double kInset = 10;
    double box_x = frame.left + kInset, box_y = frame.top + kInset;
    size_t fewest_covered = std::numeric_limits<size_t>::max();
    for (const auto& [corner_x, corner_y] :
         {std::pair<double, double>{frame.left + kInset, frame.top + kInset},
          {frame.right - kInset - box_width, frame.top + kInset},
          {frame.left + kInset, frame.bottom - kInset - box_height},
          {frame.right - kInset - box_width, frame.bottom - kInset - box_height}}) {
      size_t covered = 0;
      for (const PlotCurve& curve : curves) {
        for (size_t i = 0; i < xs.size(); ++i) {
          if (!std::isfinite(curve.y[i])) continue;
          const double px = frame.XToPixel(xs[i]), py = frame.YToPixel(curve.y[i]);
          covered += px >= corner_x && px <= corner_x + box_width && py >= corner_y &&
                     py <= corner_y + box_height;
        }
      }
      if (covered < fewest_covered) {
        fewest_covered = covered;
        box_x = corner_x;
        box_y = corner_y;
      }
    }
    absl::StrAppend(&svg, "<g class=\"legend\">\n<rect x=\"", Px(box_x), "\" y=\"", Px(box_y),
                    "\" width=\"", Px(box_width), "\" height=\"", Px(box_height),
                    "\" rx=\"4\" fill=\"white\" fill-opacity=\"0.9\" stroke=\"#cccccc\"/>\n");
    for (size_t i = 0; i < curves.size(); ++i) {
      const PlotCurve& curve = curves[i];
      const double row_y = box_y + kPadding + kRowHeight * static_cast<double>(i) + 8;
      const absl::string_view color =
          kColors[static_cast<size_t>(curve.color) % std::size(kColors)];
      absl::StrAppend(&svg, "<line x1=\"", Px(box_x + kPadding), "\" y1=\"", Px(row_y), "\" x2=\"",
                      Px(box_x + kPadding + kSample), "\" y2=\"", Px(row_y), "\" stroke=\"", color,
                      "\" stroke-width=\"2.2\"", curve.dashed ? " stroke-dasharray=\"7 5\"" : "",
                      "/>\n");
      absl::StrAppend(&svg, "<text x=\"", Px(box_x + kPadding * 2 + kSample), "\" y=\"",
                      Px(row_y + 4.5), "\" fill=\"#222222\">", EscapeXml(curve.label), "</text>\n");
    }
    absl::StrAppend(&svg, "</g>\n");
  }
  absl::StrAppend(&svg, "</svg>\n");
  return svg;
}

}  // namespace cli
}  // namespace actserve
