// Kernel throughput: every elementwise activation in float32 at 16M elements, forward and
// forward+backward, on 1 and 2 threads, through actserve's Engine (SIMD kernels +
// ParallelFor), next to two references measured in the same run:
//   limit   the plain stream pass of the same shape (read x -> write y; read x, dy ->
//           write y, dx), chunked and threaded exactly as the engine is: the memory limit;
//   onednn  oneDNN's eltwise primitive (forward; forward + backward primitives for
//           forward_backward), where oneDNN has the activation.
// Also float16 / bfloat16 / float64 rows for relu and gelu (actserve and limit only).
// softmax and log_softmax (float32, 16M elements) run over the last dimension of
// [16384, 1024] (`softmax`, `log_softmax`) and over dim 0 of [1024, 16384] (`softmax_dim0`,
// `log_softmax_dim0`: a strided lane), against the same limit (the same bytes streamed
// once) and oneDNN's softmax / logsoftmax primitives (forward_training + backward).
//
// Two layouts of the four streams (x, dy, y, dx), each its own 2 MiB-aligned mapping
// marked MADV_HUGEPAGE, as the server's BufferPool maps them:
//   staggered  stream k starts k * 1088 bytes into its mapping: the streams sit at
//              different offsets within a 4 KiB page (0, 1088, 2176, 3264);
//   aligned    every stream starts at its mapping's start, so x[i], dy[i], y[i] and
//              dx[i] share their offset mod 4 KiB (and mod 2 MiB): what 2 MiB-aligned
//              buffers give when nothing staggers them.
// With the aligned layout, loads of one stream and stores of another alias at 4 KiB and
// map to the same cache sets, and the plain copy itself runs slower: the staggered limit
// is the true one, and the README's table is measured against it. float32 runs in both
// layouts (oneDNN in the staggered one), the other dtypes staggered.
//
// Buffers are allocated and touched once before timing (a first touch costs ~12 us per
// 4 KiB page on the build VMs). Writes bench/results/kernels.csv (medians of the
// repetitions, Gelem/s) and prints the ratios to the limit of the same layout and to
// oneDNN.
//
//   kernels_bench [--csv=PATH] [google benchmark flags]
#include <omp.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "benchmark/benchmark.h"
#include "oneapi/dnnl/dnnl.hpp"
#include "src/activation_spec.h"
#include "src/dtype.h"
#include "src/engine.h"
#include "src/kernels/activation_kernels.h"
#include "src/thread_pool.h"

namespace actserve {
namespace {

constexpr int64_t kElements = int64_t{1} << 24;  // 16M

struct Activation {
  const char* name;  // CSV name
  const char* spec;  // text form
  std::optional<dnnl::algorithm> onednn;
  float alpha = 0, beta = 0;
};

const std::vector<Activation>& Activations() {
  using A = dnnl::algorithm;
  static const std::vector<Activation> kActivations = {
      {"relu", "relu", A::eltwise_relu},
      {"relu6", "relu6", A::eltwise_clip, 0, 6},
      {"leaky_relu", "leaky_relu", A::eltwise_relu, 0.01f},
      {"prelu", "prelu(weight=0.25)", A::eltwise_relu, 0.25f},  // one weight: leaky relu
      {"elu", "elu", A::eltwise_elu, 1},
      {"celu", "celu", std::nullopt},
      {"selu", "selu", std::nullopt},
      {"gelu", "gelu", A::eltwise_gelu_erf},
      {"gelu_tanh", "gelu(approximate=tanh)", A::eltwise_gelu_tanh},
      {"silu", "silu", A::eltwise_swish, 1},
      {"mish", "mish", A::eltwise_mish},
      {"softplus", "softplus", A::eltwise_soft_relu},
      {"hardtanh", "hardtanh", A::eltwise_clip, -1, 1},
      {"hardsigmoid", "hardsigmoid", std::nullopt},
      {"hardswish", "hardswish", A::eltwise_hardswish},
      {"sigmoid", "sigmoid", A::eltwise_logistic},
      {"tanh", "tanh", A::eltwise_tanh},
      {"logsigmoid", "logsigmoid", A::eltwise_logsigmoid},
      {"softsign", "softsign", std::nullopt},
      {"tanhshrink", "tanhshrink", std::nullopt},
      {"softshrink", "softshrink", std::nullopt},
      {"hardshrink", "hardshrink", std::nullopt},
      {"threshold", "threshold(threshold=0.5, value=-1)", std::nullopt},
  };
  return kActivations;
}

// A softmax row: the engine's `spec` over `dim` of `shape` (kElements in all).
struct SoftmaxRow {
  const char* name;  // CSV name
  const char* spec;
  std::vector<int64_t> shape;
  int dim;
  bool log;
};

const std::vector<SoftmaxRow>& SoftmaxRows() {
  static const std::vector<SoftmaxRow> kRows = {
      {"softmax", "softmax(dim=1)", {16384, 1024}, 1, false},
      {"log_softmax", "log_softmax(dim=1)", {16384, 1024}, 1, true},
      {"softmax_dim0", "softmax(dim=0)", {1024, 16384}, 0, false},
      {"log_softmax_dim0", "log_softmax(dim=0)", {1024, 16384}, 0, true},
  };
  return kRows;
}

enum class Layout { kStaggered, kAligned };

const char* LayoutName(Layout layout) {
  return layout == Layout::kStaggered ? "staggered" : "aligned";
}

// One stream: `bytes` bytes at `offset` into a fresh 2 MiB-aligned mapping (never unmapped:
// the buffers live as long as the benchmark).
absl::Span<char> MapStream(size_t bytes, size_t offset) {
  constexpr size_t kHugePage = size_t{2} << 20;
  const size_t length = bytes + offset + kHugePage;
  void* mapped = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) {
    std::fprintf(stderr, "kernels_bench: cannot map %zu bytes\n", length);
    std::exit(1);
  }
  const uintptr_t aligned =
      (reinterpret_cast<uintptr_t>(mapped) + kHugePage - 1) / kHugePage * kHugePage;
  madvise(reinterpret_cast<void*>(aligned), bytes + offset, MADV_HUGEPAGE);
  return {reinterpret_cast<char*>(aligned) + offset, bytes};
}

// Pre-touched buffers for one dtype and layout.
struct Buffers {
  absl::Span<char> x, dy, y, dx;
};

Buffers& BuffersFor(DType dtype, Layout layout = Layout::kStaggered) {
  static std::map<std::pair<DType, Layout>, Buffers> buffers;
  auto it = buffers.find({dtype, layout});
  if (it != buffers.end()) return it->second;
  Buffers& b = buffers[{dtype, layout}];
  const size_t bytes = static_cast<size_t>(kElements) * DTypeSize(dtype);
  const size_t stagger = layout == Layout::kStaggered ? 1088 : 0;
  b.x = MapStream(bytes, 0);
  b.dy = MapStream(bytes, stagger);
  b.y = MapStream(bytes, 2 * stagger);
  b.dx = MapStream(bytes, 3 * stagger);
  std::memset(b.y.data(), 1, bytes);
  std::memset(b.dx.data(), 1, bytes);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-8, 8);
  for (int64_t i = 0; i < kElements; ++i) {
    const double x = dist(rng), dy = dist(rng) / 8;
    switch (dtype) {
      case DType::kFloat64:
        std::memcpy(b.x.data() + i * 8, &x, 8);
        std::memcpy(b.dy.data() + i * 8, &dy, 8);
        break;
      case DType::kFloat16:
      case DType::kBFloat16: {
        const bool f16 = dtype == DType::kFloat16;
        const uint16_t xb = f16 ? RoundToFloat16(x) : RoundToBFloat16(x);
        const uint16_t db = f16 ? RoundToFloat16(dy) : RoundToBFloat16(dy);
        std::memcpy(b.x.data() + i * 2, &xb, 2);
        std::memcpy(b.dy.data() + i * 2, &db, 2);
        break;
      }
      default: {
        const float xf = static_cast<float>(x), df = static_cast<float>(dy);
        std::memcpy(b.x.data() + i * 4, &xf, 4);
        std::memcpy(b.dy.data() + i * 4, &df, 4);
      }
    }
  }
  return b;
}

// The pool for `threads` (the caller is one of them): nullptr for 1.
ThreadPool* PoolFor(int threads) {
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  if (threads <= 1) return nullptr;
  auto& pool = pools[threads];
  if (!pool) pool = std::make_unique<ThreadPool>(ThreadPoolOptions{threads - 1, 1024});
  return pool.get();
}

const std::vector<int64_t> kShape = {kElements};

void BM_Actserve(benchmark::State& state, std::string spec_text, DType dtype, bool backward,
                 int threads, std::vector<int64_t> shape, Layout layout) {
  Buffers& b = BuffersFor(dtype, layout);
  EngineOptions options;
  options.pool = PoolFor(threads);
  options.max_elements = 0;
  Engine engine(options);
  ComputeItem item;
  item.input = {dtype, shape, b.x};
  item.activation = *ParseActivationSpec(spec_text);
  item.mode = backward ? Mode::kForwardBackward : Mode::kForward;
  if (backward) item.grad_output = ConstTensorView{dtype, shape, b.dy};
  ItemBuffers out;
  out.output = b.y;
  if (backward) out.grad_input = b.dx;
  std::vector<char> grad_weight(DTypeSize(dtype));
  if (item.activation.kind == ActivationKind::kPrelu && backward) {
    out.grad_weight = absl::MakeSpan(grad_weight);
  }
  for (auto _ : state) {
    absl::Status status = engine.Compute({&item, 1}, {&out, 1});
    if (!status.ok()) state.SkipWithError(std::string(status.message()).c_str());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kElements);
}

// Copies `bytes` with ordinary loads and stores, as the kernels do. (memcpy may use
// `rep movsb` or non-temporal stores, which skip the read-for-ownership of the
// destination: a different, higher limit.) XOR with a zero the compiler cannot see keeps
// the loop from being turned into a memcpy call.
volatile uint64_t g_zero = 0;
void StreamCopy(const char* from, char* to, size_t bytes) {
  const uint64_t zero = g_zero;
  const size_t words = bytes / 8;
  const auto* in = reinterpret_cast<const uint64_t*>(from);
  auto* out = reinterpret_cast<uint64_t*>(to);
  for (size_t i = 0; i < words; ++i) out[i] = in[i] ^ zero;
  std::memcpy(to + words * 8, from + words * 8, bytes - words * 8);
}

// The memory limit: the same streams, the same chunks and threads, a plain copy.
void BM_Limit(benchmark::State& state, DType dtype, bool backward, int threads, Layout layout) {
  Buffers& b = BuffersFor(dtype, layout);
  const size_t size = DTypeSize(dtype);
  const int64_t grain = EngineOptions{}.chunk_elements;
  ThreadPool* pool = PoolFor(threads);
  for (auto _ : state) {
    absl::Status status =
        ParallelFor(pool, kElements, grain, nullptr, [&](int64_t, int64_t begin, int64_t end) {
          const size_t offset = begin * size;
          const size_t bytes = (end - begin) * size;
          StreamCopy(b.x.data() + offset, b.y.data() + offset, bytes);
          if (backward) {
            StreamCopy(b.dy.data() + offset, b.dx.data() + offset, bytes);
          }
        });
    benchmark::DoNotOptimize(status);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kElements);
}

void BM_OneDnn(benchmark::State& state, Activation activation, bool backward, int threads) {
  Buffers& b = BuffersFor(DType::kFloat32);
  omp_set_num_threads(threads);
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const dnnl::memory::desc md({kElements}, dnnl::memory::data_type::f32,
                              dnnl::memory::format_tag::a);
  dnnl::memory src(md, engine, b.x.data()), dst(md, engine, b.y.data());
  dnnl::memory diff_dst(md, engine, b.dy.data()), diff_src(md, engine, b.dx.data());
  const dnnl::eltwise_forward::desc fwd_desc(dnnl::prop_kind::forward_training, *activation.onednn,
                                             md, activation.alpha, activation.beta);
  const dnnl::eltwise_forward::primitive_desc fwd_pd(fwd_desc, engine);
  const dnnl::eltwise_forward fwd(fwd_pd);
  std::optional<dnnl::eltwise_backward> bwd;
  if (backward) {
    const dnnl::eltwise_backward::desc bwd_desc(*activation.onednn, md, md, activation.alpha,
                                                activation.beta);
    bwd.emplace(dnnl::eltwise_backward::primitive_desc(bwd_desc, engine, fwd_pd));
  }
  for (auto _ : state) {
    fwd.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    if (bwd) {
      bwd->execute(
          stream,
          {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_SRC, diff_src}});
    }
    stream.wait();
  }
  state.SetItemsProcessed(state.iterations() * kElements);
  state.SetLabel(fwd_pd.impl_info_str());
}

// oneDNN's softmax (or logsoftmax) along `row.dim`: forward_training, then for
// forward_backward the backward primitive from dst and diff_dst, as actserve computes them.
void BM_OneDnnSoftmax(benchmark::State& state, SoftmaxRow row, bool backward, int threads) {
  Buffers& b = BuffersFor(DType::kFloat32);
  omp_set_num_threads(threads);
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const dnnl::memory::desc md({row.shape[0], row.shape[1]}, dnnl::memory::data_type::f32,
                              dnnl::memory::format_tag::ab);
  dnnl::memory src(md, engine, b.x.data()), dst(md, engine, b.y.data());
  dnnl::memory diff_dst(md, engine, b.dy.data()), diff_src(md, engine, b.dx.data());
  std::optional<dnnl::primitive> fwd, bwd;
  std::string impl;
  if (row.log) {
    const dnnl::logsoftmax_forward::primitive_desc fwd_pd(
        {dnnl::prop_kind::forward_training, md, row.dim}, engine);
    fwd.emplace(dnnl::logsoftmax_forward(fwd_pd));
    impl = fwd_pd.impl_info_str();
    if (backward) {
      bwd.emplace(dnnl::logsoftmax_backward(
          dnnl::logsoftmax_backward::primitive_desc({md, md, row.dim}, engine, fwd_pd)));
    }
  } else {
    const dnnl::softmax_forward::primitive_desc fwd_pd(
        {dnnl::prop_kind::forward_training, md, row.dim}, engine);
    fwd.emplace(dnnl::softmax_forward(fwd_pd));
    impl = fwd_pd.impl_info_str();
    if (backward) {
      bwd.emplace(dnnl::softmax_backward(
          dnnl::softmax_backward::primitive_desc({md, md, row.dim}, engine, fwd_pd)));
    }
  }
  for (auto _ : state) {
    fwd->execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    if (bwd) {
      bwd->execute(
          stream,
          {{DNNL_ARG_DST, dst}, {DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_SRC, diff_src}});
    }
    stream.wait();
  }
  state.SetItemsProcessed(state.iterations() * kElements);
  state.SetLabel(impl);
}

// Benchmark name: "<kind>/<activation>/<dtype>/<direction>/<threads>/<layout>".
std::string Name(const char* kind, const std::string& activation, DType dtype, bool backward,
                 int threads, Layout layout = Layout::kStaggered) {
  return absl::StrCat(kind, "/", activation, "/", DTypeName(dtype), "/",
                      backward ? "forward_backward" : "forward", "/", threads, "/",
                      LayoutName(layout));
}

// The layouts a dtype runs in.
std::vector<Layout> LayoutsFor(DType dtype) {
  if (dtype == DType::kFloat32) return {Layout::kStaggered, Layout::kAligned};
  return {Layout::kStaggered};
}

void RegisterAll() {
  const auto add = [](const std::string& name, auto&&... args) {
    benchmark::RegisterBenchmark(name.c_str(), args...)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  };
  for (int threads : {1, 2}) {
    for (bool backward : {false, true}) {
      for (DType dtype : {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kFloat64}) {
        for (Layout layout : LayoutsFor(dtype)) {
          add(Name("limit", "copy", dtype, backward, threads, layout), BM_Limit, dtype, backward,
              threads, layout);
          for (const Activation& a : Activations()) {
            const bool extra_dtypes =
                std::string(a.name) == "relu" || std::string(a.name) == "gelu";
            if (dtype != DType::kFloat32 && !extra_dtypes) continue;
            add(Name("actserve", a.name, dtype, backward, threads, layout), BM_Actserve,
                std::string(a.spec), dtype, backward, threads, kShape, layout);
            if (dtype == DType::kFloat32 && a.onednn.has_value() && layout == Layout::kStaggered) {
              add(Name("onednn", a.name, dtype, backward, threads), BM_OneDnn, a, backward,
                  threads);
            }
          }
        }
      }
      const DType f32 = DType::kFloat32;
      for (Layout layout : LayoutsFor(f32)) {
        for (const SoftmaxRow& row : SoftmaxRows()) {
          add(Name("actserve", row.name, f32, backward, threads, layout), BM_Actserve,
              std::string(row.spec), f32, backward, threads, row.shape, layout);
          if (layout == Layout::kStaggered) {
            add(Name("onednn", row.name, f32, backward, threads), BM_OneDnnSoftmax, row, backward,
                threads);
          }
        }
      }
    }
  }
}

// Keeps the median of each benchmark's repetitions (or its only run) in Gelem/s.
class MedianCollector : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
      const bool single = run.run_type == Run::RT_Iteration && run.repetitions <= 1;
      if (!median && !single) continue;
      auto it = run.counters.find("items_per_second");
      if (it != run.counters.end()) gelem_s[run.run_name.function_name] = it->second.value / 1e9;
    }
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, double> gelem_s;
};

std::string Cell(const std::map<std::string, double>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? "" : absl::StrFormat("%.3f", it->second);
}

int Main(int argc, char** argv) {
  std::string csv_path = "bench/results/kernels.csv";
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--csv=", 6) == 0) {
      csv_path = argv[i] + 6;
    } else {
      args.push_back(argv[i]);
    }
  }
  int args_count = static_cast<int>(args.size());
  benchmark::Initialize(&args_count, args.data());
  RegisterAll();
  std::printf("actserve kernels: Highway target %s\n", kernels::ActiveTargetName());
  MedianCollector collector;
  benchmark::RunSpecifiedBenchmarks(&collector);

  std::ofstream csv(csv_path);
  csv << "activation,dtype,direction,threads,layout,elements,gelem_s,limit_gelem_s,"
         "onednn_gelem_s\n";
  std::printf("\n%-16s %-9s %-17s %-3s %-9s %8s %8s %8s %9s %9s\n", "activation", "dtype",
              "direction", "thr", "layout", "Gelem/s", "limit", "oneDNN", "x limit", "x oneDNN");
  for (int threads : {1, 2}) {
    for (bool backward : {false, true}) {
      for (DType dtype : {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kFloat64}) {
        for (Layout layout : LayoutsFor(dtype)) {
          const std::string limit_key = Name("limit", "copy", dtype, backward, threads, layout);
          std::vector<const char*> names;
          for (const Activation& a : Activations()) names.push_back(a.name);
          for (const SoftmaxRow& row : SoftmaxRows()) names.push_back(row.name);
          for (const char* name : names) {
            const std::string key = Name("actserve", name, dtype, backward, threads, layout);
            auto own = collector.gelem_s.find(key);
            if (own == collector.gelem_s.end()) continue;
            // oneDNN runs in the staggered layout only.
            const std::string onednn_key = layout == Layout::kStaggered
                                               ? Name("onednn", name, dtype, backward, threads)
                                               : std::string();
            csv << name << "," << DTypeName(dtype) << ","
                << (backward ? "forward_backward" : "forward") << "," << threads << ","
                << LayoutName(layout) << "," << kElements << ","
                << absl::StrFormat("%.3f", own->second) << "," << Cell(collector.gelem_s, limit_key)
                << "," << Cell(collector.gelem_s, onednn_key) << "\n";
            auto limit = collector.gelem_s.find(limit_key);
            auto onednn = collector.gelem_s.find(onednn_key);
            std::printf("%-16s %-9s %-17s %-3d %-9s %8.3f %8s %8s %9s %9s\n", name,
                        std::string(DTypeName(dtype)).c_str(),
                        backward ? "forward_backward" : "forward", threads, LayoutName(layout),
                        own->second, Cell(collector.gelem_s, limit_key).c_str(),
                        Cell(collector.gelem_s, onednn_key).c_str(),
                        limit == collector.gelem_s.end()
                            ? ""
                            : absl::StrFormat("%.2f", own->second / limit->second).c_str(),
                        onednn == collector.gelem_s.end()
                            ? ""
                            : absl::StrFormat("%.2f", own->second / onednn->second).c_str());
          }
        }
      }
    }
  }
  std::printf("\nwrote %s\n", csv_path.c_str());
  return 0;
}

}  // namespace
}  // namespace actserve

int main(int argc, char** argv) { return actserve::Main(argc, argv); }
