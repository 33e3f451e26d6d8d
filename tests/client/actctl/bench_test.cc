// The benchmark's client side that carries its correctness, without a server: the echo's
// requests have exactly the asked wire sizes (so the comparison moves the same bytes),
// the page faults read from /proc are counted, quantiles are nearest-rank, the results
// CSV has the agreed format, and repeated --target flags are all kept. Nothing here
// measures time. (The load generator against a real echo server is tested in
// tests/bench/service_bench_test.cc, with the harness.)
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "client/actctl/bench/echo_request.h"
#include "client/actctl/bench/load.h"
#include "client/actctl/bench/results_csv.h"
#include "client/actctl/cli_format.h"

namespace actserve {
namespace bench {
namespace {

TEST(EchoSizesTest, MessagesHaveExactlyTheAskedWireSizes) {
  for (size_t request : {size_t{16}, size_t{1030}, size_t{65600}, size_t{16777300}}) {
    for (size_t response : {size_t{0}, size_t{12}, size_t{2100}, size_t{33554500}}) {
      const EchoSizes sizes = EchoSizesFor(request, response);
      EXPECT_EQ(MakeEchoRequest(sizes, "abc").size(), request) << request << " " << response;
      if (response >= 2) {
        // 1 tag byte, the length's varint, the payload.
        const size_t varint = sizes.response_payload < 128     ? 1
                              : sizes.response_payload < 16384 ? 2
                              : sizes.response_payload < (1u << 21) ? 3 : 4;
        EXPECT_EQ(1 + varint + sizes.response_payload, response) << response;
      }
    }
  }
}

TEST(ResultsCsvTest, HeaderAndRowsInTheAgreedFormat) {
  ServiceBenchRow row;
  row.rpc = "unary";
  row.activation = "gelu";
  row.payload_bytes = 65536;
  row.mode = "forward_backward";
  row.concurrency = 4;
  row.actserve = {512.25, 120.4, 980.6, 0.004};
  row.echo = {400.5, 150.0, 1000.0, 16.254};
  row.echo_default = {300.125, 170.2, 1200.7};
  EXPECT_EQ(FormatServiceCsv({row}),
            "rpc,activation,payload_bytes,items,mode,concurrency,actserve_mb_s,echo_mb_s,"
            "actserve_p50_us,echo_p50_us,actserve_p99_us,echo_p99_us,"
            "actserve_faults_per_call,echo_faults_per_call\n"
            "unary,gelu,65536,1,forward_backward,4,512.250,400.500,120,150,981,1000,0.00,16.25\n");
  EXPECT_EQ(FormatEchoDefaultCsv({row}),
            "rpc,activation,payload_bytes,items,mode,concurrency,echo_default_mb_s,"
            "echo_default_p50_us,echo_default_p99_us,echo_mb_s\n"
            "unary,gelu,65536,1,forward_backward,4,300.125,170,1201,400.500\n");
}

TEST(ResultsCsvTest, FaultsNotMeasuredAreEmpty) {
  ServiceBenchRow row;
  row.rpc = "stream";
  row.activation = "relu";
  row.payload_bytes = 1024;
  row.mode = "forward";
  row.actserve = {1, 2, 3};
  row.echo = {4, 5, 6};
  EXPECT_EQ(FormatServiceCsv({row}).substr(std::string(kServiceCsvHeader).size() + 1),
            "stream,relu,1024,1,forward,1,1.000,4.000,2,5,3,6,,\n");
}

// A first touch of each page of a fresh private mapping is a minor fault; the count read
// from /proc must grow by at least one per page touched.
TEST(MinorPageFaultsTest, CountsTheFirstTouchOfFreshPages) {
  constexpr size_t kPages = 256;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  void* memory = ::mmap(nullptr, kPages * page, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(memory, MAP_FAILED);
  // No transparent huge page: one fault would then map many pages at once.
  ::madvise(memory, kPages * page, MADV_NOHUGEPAGE);
  absl::StatusOr<int64_t> before = MinorPageFaults(::getpid());
  ASSERT_TRUE(before.ok()) << before.status();
  for (size_t i = 0; i < kPages; ++i) static_cast<volatile char*>(memory)[i * page] = 1;
  absl::StatusOr<int64_t> after = MinorPageFaults(::getpid());
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_GE(*after - *before, static_cast<int64_t>(kPages));
  ::munmap(memory, kPages * page);
}

TEST(MinorPageFaultsTest, NoSuchProcessIsNotFound) {
  // Above the kernel's largest pid (pid_max is at most 2^22).
  EXPECT_EQ(MinorPageFaults(1 << 30).status().code(), absl::StatusCode::kNotFound);
}

TEST(QuantileTest, NearestRank) {
  std::vector<double> values = {5, 1, 4, 2, 3};
  EXPECT_EQ(Quantile(values, 0.5), 3);
  EXPECT_EQ(Quantile(values, 0.99), 5);
  std::vector<double> none;
  EXPECT_EQ(Quantile(none, 0.5), 0);
}

TEST(RepeatedFlagValuesTest, EveryTargetInOrder) {
  std::vector<std::string> args = {"actctl", "--target=a:1", "bench", "--target", "b:2",
                                   "-target=c:3", "--targets=x", "--", "--target=d:4"};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  EXPECT_EQ(cli::RepeatedFlagValues(static_cast<int>(argv.size()), argv.data(), "target"),
            (std::vector<std::string>{"a:1", "b:2", "c:3"}));
}

}  // namespace
}  // namespace bench
}  // namespace actserve
