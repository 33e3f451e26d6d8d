// Reading back what client/actctl/svg_plot.cc writes, for tests: a curve's points, the plot
// area's pixel box and data ranges, and whether the document is well-formed XML (by
// Python's xml.etree, an independent parser).
#ifndef ACTSERVE_TESTS_CLIENT_ACTCTL_SVG_READER_H_
#define ACTSERVE_TESTS_CLIENT_ACTCTL_SVG_READER_H_

#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace actserve {
namespace testing {

// The value of `attribute` in the first element that contains `marker` (e.g.
// `data-label="relu"`), or "" when there is none.
inline std::string SvgAttribute(const std::string& svg, const std::string& marker,
                                const std::string& attribute) {
  const size_t at = svg.find(marker);
  if (at == std::string::npos) return "";
  const size_t start = svg.rfind('<', at);
  const size_t end = svg.find('>', at);
  const std::string element = svg.substr(start, end - start);
  const std::string key = " " + attribute + "=\"";
  const size_t value = element.find(key);
  if (value == std::string::npos) return "";
  const size_t first = value + key.size();
  return element.substr(first, element.find('"', first) - first);
}

// Space-separated numbers, e.g. a data range "-4 4".
inline std::vector<double> SvgNumbers(const std::string& text) {
  std::vector<double> numbers;
  for (absl::string_view token : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    double value = 0;
    if (absl::SimpleAtod(token, &value)) numbers.push_back(value);
  }
  return numbers;
}

// The points of the path with data-label `label` ("M" and "L" commands of "x,y").
inline std::vector<std::pair<double, double>> SvgPathPoints(const std::string& svg,
                                                            const std::string& label) {
  std::vector<std::pair<double, double>> points;
  const std::string d = SvgAttribute(svg, "data-label=\"" + label + "\"", "d");
  for (absl::string_view command : absl::StrSplit(d, ' ', absl::SkipEmpty())) {
    command.remove_prefix(1);  // M or L
    std::pair<absl::string_view, absl::string_view> xy = absl::StrSplit(command, ',');
    std::pair<double, double> point;
    if (absl::SimpleAtod(xy.first, &point.first) && absl::SimpleAtod(xy.second, &point.second)) {
      points.push_back(point);
    }
  }
  return points;
}

// True when /usr/bin/python3 parses the file `path` as XML whose root is an SVG element.
inline bool IsWellFormedSvg(const std::string& path) {
  const std::string command =
      "/usr/bin/python3 -c 'import sys, xml.etree.ElementTree as E; "
      "root = E.parse(sys.argv[1]).getroot(); "
      "sys.exit(0 if root.tag == \"{http://www.w3.org/2000/svg}svg\" else 1)' '" +
      path + "'";
  return std::system(command.c_str()) == 0;
}

}  // namespace testing
}  // namespace actserve

#endif  // ACTSERVE_TESTS_CLIENT_ACTCTL_SVG_READER_H_
