// See results_csv.h.
#include "client/actctl/bench/results_csv.h"

#include <cmath>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace actserve {
namespace bench {
namespace {

std::string MegabytesPerSecond(double value) { return absl::StrFormat("%.3f", value); }
std::string Microseconds(double value) { return absl::StrFormat("%.0f", std::round(value)); }
std::string FaultsPerCall(double value) {
  return value < 0 ? std::string() : absl::StrFormat("%.2f", value);
}

std::string RowKey(const ServiceBenchRow& row) {
  return absl::StrCat(row.rpc, ",", row.activation, ",", row.payload_bytes, ",", row.items, ",",
                      row.mode, ",", row.concurrency);
}

}  // namespace

const char kServiceCsvHeader[] =
    "rpc,activation,payload_bytes,items,mode,concurrency,actserve_mb_s,echo_mb_s,actserve_p50_us,"
    "echo_p50_us,actserve_p99_us,echo_p99_us,actserve_faults_per_call,echo_faults_per_call";
const char kEchoDefaultCsvHeader[] =
    "rpc,activation,payload_bytes,items,mode,concurrency,echo_default_mb_s,echo_default_p50_us,"
    "echo_default_p99_us,echo_mb_s";

std::string FormatServiceCsv(const std::vector<ServiceBenchRow>& rows) {
  std::string text = absl::StrCat(kServiceCsvHeader, "\n");
  for (const ServiceBenchRow& row : rows) {
    absl::StrAppend(&text, RowKey(row), ",", MegabytesPerSecond(row.actserve.mb_s), ",",
                    MegabytesPerSecond(row.echo.mb_s), ",", Microseconds(row.actserve.p50_us),
                    ",", Microseconds(row.echo.p50_us), ",", Microseconds(row.actserve.p99_us),
                    ",", Microseconds(row.echo.p99_us), ",",
                    FaultsPerCall(row.actserve.faults_per_call), ",",
                    FaultsPerCall(row.echo.faults_per_call), "\n");
  }
  return text;
}

std::string FormatEchoDefaultCsv(const std::vector<ServiceBenchRow>& rows) {
  std::string text = absl::StrCat(kEchoDefaultCsvHeader, "\n");
  for (const ServiceBenchRow& row : rows) {
    absl::StrAppend(&text, RowKey(row), ",", MegabytesPerSecond(row.echo_default.mb_s), ",",
                    Microseconds(row.echo_default.p50_us), ",",
                    Microseconds(row.echo_default.p99_us), ",",
                    MegabytesPerSecond(row.echo.mb_s), "\n");
  }
  return text;
}

absl::Status WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file) return absl::UnavailableError(absl::StrCat("cannot write '", path, "'"));
  file << text;
  file.close();
  if (!file) return absl::UnavailableError(absl::StrCat("cannot write '", path, "'"));
  return absl::OkStatus();
}

}  // namespace bench
}  // namespace actserve
