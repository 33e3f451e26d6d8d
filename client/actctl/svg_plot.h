// Line plots as SVG, written by hand (no dependency): what `actctl plot` draws, the
// classic figure of activations f(x) (solid lines) against their derivatives f'(x)
// (dashed), with axes, ticks, a grid and a legend (in the corner where it hides the
// fewest points of the curves).
//
//   std::vector<double> xs = ...;                      // increasing
//   std::vector<PlotCurve> curves = {{"relu", relu_y, 0, false},
//                                    {"relu′", relu_dy, 0, true}};
//   absl::StatusOr<std::string> svg = RenderSvgPlot(xs, curves, PlotOptions());
//
// The plot area's <rect class="plot-area"> carries its data ranges as `data-x-range` and
// `data-y-range` ("min max"), and each curve's <path> its label as `data-label`, so that
// a reader (or a test) can map pixels back to data. Thread-safe: pure functions.
#ifndef ACTSERVE_CLIENT_ACTCTL_SVG_PLOT_H_
#define ACTSERVE_CLIENT_ACTCTL_SVG_PLOT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace actserve {
namespace cli {

// One line on the plot.
struct PlotCurve {
  std::string label;      // legend text and `data-label`, e.g. "softplus" or "softplus′"
  std::vector<double> y;  // one value per x; a non-finite value leaves a gap in the line
  int color = 0;          // index into PlotColors(), modulo its size
  bool dashed = false;    // solid otherwise
};

struct PlotOptions {
  int width = 800;   // pixels; at least 200
  int height = 500;  // pixels; at least 150
  // Above the plot area; empty: none (and a narrower top margin). Default: empty.
  std::string title;
  std::string x_label = "x";  // under the x axis
  std::string y_label = "y";  // beside the y axis, rotated
};

// Distinct colours (matplotlib's "tab10"), as "#rrggbb".
absl::Span<const absl::string_view> PlotColors();

// Where data coordinates land in the picture.
struct PlotFrame {
  double x_min = 0, x_max = 1;  // data range across the plot area
  double y_min = 0, y_max = 1;
  double left = 0, right = 1;  // the plot area in pixels (y grows downwards)
  double top = 0, bottom = 1;

  double XToPixel(double x) const { return left + (x - x_min) / (x_max - x_min) * (right - left); }
  double YToPixel(double y) const {
    return bottom - (y - y_min) / (y_max - y_min) * (bottom - top);
  }
};

// The frame RenderSvgPlot uses: x spans exactly [xs.front(), xs.back()]; y spans the
// curves' finite values with 6% of their spread added above and below (a flat set of
// values gets +-1 around it). Margins leave room for tick labels, the axis labels and the
// title. Expects what RenderSvgPlot checks.
PlotFrame ComputePlotFrame(absl::Span<const double> xs, absl::Span<const PlotCurve> curves,
                           const PlotOptions& options);

// Tick positions for [lo, hi]: the multiples of a "nice" step (1, 2 or 5 times a power of
// ten) chosen for about `target` ticks. Values within 1e-9 steps of zero are exactly 0.
std::vector<double> NiceTicks(double lo, double hi, int target);

// A complete SVG document (UTF-8 XML). InvalidArgument when there are fewer than 2 xs, xs
// is not strictly increasing or not finite, a curve's y does not have one value per x, no
// curve has a finite value, or the size is below the minimum.
absl::StatusOr<std::string> RenderSvgPlot(absl::Span<const double> xs,
                                          absl::Span<const PlotCurve> curves,
                                          const PlotOptions& options);

}  // namespace cli
}  // namespace actserve

#endif  // ACTSERVE_CLIENT_ACTCTL_SVG_PLOT_H_
