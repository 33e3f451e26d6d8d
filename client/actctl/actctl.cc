// actctl: the command-line client of an actserve server.
//
//   actctl list
//   actctl compute --activation=gelu --values=-2,-1,0,1,2
//   actctl compute --activation="leaky_relu(negative_slope=0.2)" --input=x.npy \
//       --output=y.npy --grad_input=dx.npy
//   actctl health
//   actctl --tls_ca=ca.pem --token_file=token plot --activation=relu,softplus \
//       --range=-4,4 --svg=relu-softplus.svg
//   actctl bench --target=host1:50051 --echo_target=host2:50052   (bench/bench_command.h)
//
// The flags are read once, in main, into a CommandLine; the commands take it. actctl
// links the C++ SDK only (client/actctl/CMakeLists.txt).
//
// Exit codes: 0 success (health: SERVING); 1 the operation failed (an error from the
// server, a file that cannot be read, health not SERVING or the server unreachable);
// 2 a usage error (unknown subcommand, bad flag value).
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "actserve/batch.h"
#include "actserve/client.h"
#include "actserve/tensor.h"
#include "actserve/types.h"
#include "client/actctl/bench/bench_command.h"
#include "client/actctl/cli_format.h"
#include "client/actctl/npy.h"
#include "client/actctl/svg_plot.h"
#include "src/catalogue.h"

ABSL_FLAG(std::string, target, "localhost:50051",
          "the server: host:port, dns:///host:port, or ipv4:addr:port,addr:port");
ABSL_FLAG(absl::Duration, deadline, absl::Seconds(30), "deadline of each call, e.g. 30s, 500ms");
ABSL_FLAG(bool, tls, false,
          "use TLS even without --tls_ca, trusting gRPC's default roots "
          "($GRPC_DEFAULT_SSL_ROOTS_FILE_PATH or gRPC's bundled ones); any --tls_* flag "
          "implies TLS");
ABSL_FLAG(std::string, tls_ca, "",
          "TLS: PEM file of the CA certificates that sign the server's certificate");
ABSL_FLAG(std::string, tls_cert, "",
          "mutual TLS: PEM certificate chain of this client (with --tls_key)");
ABSL_FLAG(std::string, tls_key, "", "mutual TLS: PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_server_name, "",
          "TLS: the host name to verify in the server's certificate instead of the "
          "target's host (e.g. when the target is an IP address)");
ABSL_FLAG(std::string, token_file, "",
          "file holding a bearer token (trailing newline ignored), sent as "
          "'authorization: Bearer <token>' on every call; the token is never printed");
ABSL_FLAG(std::string, activation, "gelu",
          "compute: the activation in text form, e.g. relu, "
          "\"leaky_relu(negative_slope=0.2)\", \"gelu(approximate=tanh)\". plot: one or "
          "more, separated by ',' or ';' or given as repeated flags (commas inside "
          "parentheses belong to the spec): relu,softplus or \"elu(alpha=2);celu(alpha=2)\"");
ABSL_FLAG(std::string, values, "", "compute: inline input values, e.g. -2,-1,0,1,2");
ABSL_FLAG(std::string, input, "", "compute: input tensor x as a .npy file");
ABSL_FLAG(std::string, output, "", "compute: write the output y to this .npy file");
ABSL_FLAG(std::string, grad_output, "",
          "compute: dy as a .npy file (x's shape, converted to x's dtype); absent: dy = 1, "
          "so dx = f'(x)");
ABSL_FLAG(std::string, grad_input, "", "compute: write the gradient dx to this .npy file");
ABSL_FLAG(std::string, dtype, "",
          "compute, plot: float32, float64, float16 or bfloat16. Default: float32 for "
          "--values, the file's dtype for --input (a '<u2' file needs --dtype=bfloat16), "
          "float64 for plot; another dtype converts the values, rounding to nearest-even");
ABSL_FLAG(std::string, mode, "forward_backward", "compute: forward, backward or forward_backward");
ABSL_FLAG(std::string, service, "", "health: the service to ask about; empty: the server");
ABSL_FLAG(std::string, range, "-4,4", "plot: the x range lo,hi");
ABSL_FLAG(int, points, 401, "plot: how many evenly spaced x values, ends included (2 to 100000)");
ABSL_FLAG(std::string, svg, "plot.svg", "plot: the SVG file to write");
ABSL_FLAG(std::string, title, "",
          "plot: the figure's title; empty: \"f(x) (solid) and f'(x) (dashed)\"");

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
// Inputs up to this many elements print as a table; bigger ones as a summary.
constexpr int64_t kMaxTableElements = 64;
// Bounds of --points: a line needs two; more than this is finer than any screen.
constexpr int kMinPlotPoints = 2;
constexpr int kMaxPlotPoints = 100000;

constexpr char kUsage[] = R"usage(the command-line client of an actserve server.

Usage:
  actctl [--target=host:port] [--deadline=30s] [TLS and token flags] <command> [flags]

TLS and token (as the server's --tls_cert, --tls_client_ca, --auth_token_file need):
  --tls_ca=ca.pem            TLS, trusting this CA (--tls: TLS with the default roots)
  --tls_cert=c.pem --tls_key=c.key   mutual TLS: this client's certificate and key
  --tls_server_name=host     the name to verify when the target is, e.g., an IP address
  --token_file=token         send 'authorization: Bearer <token>' on every call

Commands:
  list      every activation the server computes, with parameters, defaults and
            formulas, and the server's version, dtypes, SIMD target, threads, limits
  compute   run an activation forward and/or backward:
              actctl compute --activation=gelu --values=-2,-1,0,1,2
              actctl compute --activation="leaky_relu(negative_slope=0.2)" \
                  --input=x.npy --output=y.npy --grad_output=dy.npy --grad_input=dx.npy
            flags: --activation --values | --input --output --grad_output --grad_input
                   --dtype --mode
  health    print SERVING or NOT_SERVING; exit 0 only when serving
  plot      an SVG of f(x) (solid) and f'(x) (dashed) for elementwise activations,
            computed by the server:
              actctl plot --activation=relu,softplus --range=-4,4 --points=401 \
                  --svg=relu-softplus.svg
            flags: --activation (repeat it, or separate specs with ',' or ';')
                   --range --points --svg --title --dtype
  bench     load running servers, and compare with a bare gRPC echo of the same bytes
            when one is given (`make bench-service` starts both for you):
              actctl bench --target=host1:50051 --target=host2:50051 \
                  --echo_target=host3:50052     # load a running fleet
              actctl bench      # the server of --target (localhost:50051) alone
            flags: --target (repeatable) --echo_target (repeatable) --bench_csv
                   --bench_rounds --bench_min_time --bench_payloads
                   --bench_concurrency --bench_modes --bench_stream_chunk
                   --bench_activation

Exit codes: 0 success, 1 failure (server error, not serving, unreachable, file error),
2 usage error.)usage";

int Fail(const absl::Status& status, absl::string_view context) {
  std::fprintf(stderr, "actctl: %s: %s\n", std::string(context).c_str(), status.ToString().c_str());
  return kExitFailure;
}

int UsageError(absl::string_view message) {
  std::fprintf(stderr, "actctl: %s\nRun 'actctl --help' for usage.\n",
               std::string(message).c_str());
  return kExitUsage;
}

// Everything the commands use, read from the flags once, in main (ReadFlags); nothing
// below main reads a flag. Each field is its flag's value (see the ABSL_FLAGs above for
// defaults and meaning).
struct CommandLine {
  std::string target;
  // The client's settings.
  absl::Duration deadline;
  bool tls = false;
  std::string tls_ca, tls_cert, tls_key, tls_server_name, token_file;
  // compute: the activation; plot: every --activation given (absl keeps only the last).
  std::string activation;
  std::vector<std::string> plot_activations;
  std::string values, input, output, grad_output, grad_input, dtype, mode;
  std::string service;  // health
  std::string range, svg, title;  // plot
  int points = 0;
};

CommandLine ReadFlags(int argc, char** argv) {
  CommandLine flags;
  flags.target = absl::GetFlag(FLAGS_target);
  flags.deadline = absl::GetFlag(FLAGS_deadline);
  flags.tls = absl::GetFlag(FLAGS_tls);
  flags.tls_ca = absl::GetFlag(FLAGS_tls_ca);
  flags.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  flags.tls_key = absl::GetFlag(FLAGS_tls_key);
  flags.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  flags.token_file = absl::GetFlag(FLAGS_token_file);
  flags.activation = absl::GetFlag(FLAGS_activation);
  flags.plot_activations = actserve::cli::RepeatedFlagValues(argc, argv, "activation");
  if (flags.plot_activations.empty()) flags.plot_activations.push_back(flags.activation);
  flags.values = absl::GetFlag(FLAGS_values);
  flags.input = absl::GetFlag(FLAGS_input);
  flags.output = absl::GetFlag(FLAGS_output);
  flags.grad_output = absl::GetFlag(FLAGS_grad_output);
  flags.grad_input = absl::GetFlag(FLAGS_grad_input);
  flags.dtype = absl::GetFlag(FLAGS_dtype);
  flags.mode = absl::GetFlag(FLAGS_mode);
  flags.service = absl::GetFlag(FLAGS_service);
  flags.range = absl::GetFlag(FLAGS_range);
  flags.points = absl::GetFlag(FLAGS_points);
  flags.svg = absl::GetFlag(FLAGS_svg);
  flags.title = absl::GetFlag(FLAGS_title);
  return flags;
}

// The client's options from the command line; an error when the token file cannot be
// read (the TLS files are read by the Client, which reports them on its first call).
absl::StatusOr<actserve::ClientOptions> ClientOptionsFrom(const CommandLine& flags) {
  actserve::ClientOptions options;
  options.deadline = flags.deadline;
  actserve::TlsOptions tls;
  tls.ca_file = flags.tls_ca;
  tls.cert_file = flags.tls_cert;
  tls.key_file = flags.tls_key;
  tls.server_name = flags.tls_server_name;
  if (flags.tls || !tls.ca_file.empty() || !tls.cert_file.empty() || !tls.key_file.empty() ||
      !tls.server_name.empty()) {
    options.tls = std::move(tls);
  }
  if (!flags.token_file.empty()) {
    absl::StatusOr<std::string> token = actserve::ReadTokenFile(flags.token_file);
    if (!token.ok()) return token.status();
    options.token = *std::move(token);
  }
  return options;
}

int RunList(const actserve::Client& client, const CommandLine& flags) {
  absl::StatusOr<actserve::ServiceDescription> description = client.ListActivations();
  if (!description.ok()) {
    return Fail(description.status(), absl::StrCat("list from ", flags.target));
  }
  std::fputs(actserve::cli::FormatServiceDescription(*description).c_str(), stdout);
  return 0;
}

int RunHealth(const actserve::Client& client, const CommandLine& flags) {
  absl::StatusOr<actserve::HealthStatus> health = client.Health(flags.service);
  if (!health.ok()) {
    return Fail(health.status(),
                absl::StrCat("cannot check the health of ", flags.target));
  }
  std::printf("%s\n", std::string(actserve::HealthStatusName(*health)).c_str());
  return *health == actserve::HealthStatus::kServing ? 0 : kExitFailure;
}

// `tensor` in `dtype`, converting (rounding to nearest-even) when it differs.
absl::StatusOr<actserve::Tensor> ConvertTo(actserve::Tensor tensor, actserve::DType dtype) {
  if (tensor.dtype() == dtype) return tensor;
  const std::vector<double> values = tensor.ToDoubles();
  return actserve::Tensor::FromDoubles(
      dtype, std::vector<int64_t>(tensor.shape().begin(), tensor.shape().end()), values);
}

int RunCompute(const actserve::Client& client, const CommandLine& flags) {
  const std::string activation_text = flags.activation;
  absl::StatusOr<actserve::ActivationSpec> spec = actserve::ParseActivationSpec(activation_text);
  if (!spec.ok()) {
    return UsageError(
        absl::StrCat("bad --activation='", activation_text, "': ", spec.status().message()));
  }
  absl::StatusOr<actserve::Mode> mode = actserve::cli::ParseMode(flags.mode);
  if (!mode.ok()) return UsageError(absl::StrCat("--mode: ", mode.status().message()));
  std::optional<actserve::DType> dtype;
  if (!flags.dtype.empty()) {
    absl::StatusOr<actserve::DType> parsed =
        actserve::cli::ParseDTypeFlag(flags.dtype);
    if (!parsed.ok()) return UsageError(absl::StrCat("--dtype: ", parsed.status().message()));
    dtype = *parsed;
  }
  const std::string values_flag = flags.values;
  const std::string input_path = flags.input;
  if (values_flag.empty() == input_path.empty()) {
    return UsageError("compute needs exactly one of --values and --input");
  }
  const std::string output_path = flags.output;
  const std::string grad_input_path = flags.grad_input;
  if (!output_path.empty() && !actserve::ComputesOutput(*mode)) {
    return UsageError("--output is given, but --mode=backward computes no output");
  }
  if (!grad_input_path.empty() && !actserve::ComputesGradient(*mode)) {
    return UsageError("--grad_input is given, but --mode=forward computes no gradient");
  }

  const actserve::npy::ReadOptions read_options{dtype == actserve::DType::kBFloat16};
  absl::StatusOr<actserve::Tensor> x;
  if (!values_flag.empty()) {
    absl::StatusOr<std::vector<double>> values = actserve::cli::ParseValueList(values_flag);
    if (!values.ok()) return UsageError(values.status().message());
    x = actserve::Tensor::FromDoubles(dtype.value_or(actserve::DType::kFloat32),
                                      {static_cast<int64_t>(values->size())}, *values);
  } else {
    x = actserve::npy::ReadFile(input_path, read_options);
    if (x.ok() && dtype.has_value()) x = ConvertTo(*std::move(x), *dtype);
  }
  if (!x.ok()) return Fail(x.status(), "reading the input");

  std::optional<actserve::Tensor> dy;
  if (const std::string path = flags.grad_output; !path.empty()) {
    absl::StatusOr<actserve::Tensor> read = actserve::npy::ReadFile(path, read_options);
    if (read.ok()) read = ConvertTo(*std::move(read), x->dtype());
    if (!read.ok()) return Fail(read.status(), "reading --grad_output");
    dy = *std::move(read);
  }

  actserve::Batch batch;
  batch.Add(x->view(), *spec, *mode,
            dy.has_value() ? std::optional<actserve::TensorView>(dy->view()) : std::nullopt);
  absl::StatusOr<std::vector<actserve::ItemOutput>> outputs = client.Compute(batch);
  if (!outputs.ok()) {
    return Fail(outputs.status(), absl::StrCat("compute ", actserve::FormatActivationSpec(*spec),
                                               " on ", flags.target));
  }
  const actserve::ItemOutput& result = outputs->front();

  std::printf("%s  %s  shape %s  %s\n", actserve::FormatActivationSpec(*spec).c_str(),
              std::string(actserve::DTypeName(x->dtype())).c_str(),
              actserve::ShapeToString(x->shape()).c_str(),
              std::string(actserve::ModeName(*mode)).c_str());
  const std::string text =
      x->num_elements() <= kMaxTableElements
          ? actserve::cli::FormatComputeTable(*x, result.output, result.grad_input)
          : actserve::cli::FormatComputeSummary(*x, result.output, result.grad_input);
  std::fputs(text.c_str(), stdout);

  for (const auto& [path, tensor] :
       {std::pair<const std::string&, const std::optional<actserve::Tensor>&>{output_path,
                                                                              result.output},
        {grad_input_path, result.grad_input}}) {
    if (path.empty() || !tensor.has_value()) continue;
    absl::Status written = actserve::npy::WriteFile(path, *tensor);
    if (!written.ok()) return Fail(written, "writing the result");
    std::printf("wrote %s\n", path.c_str());
  }
  return 0;
}

int RunPlot(const actserve::Client& client, const CommandLine& flags) {
  std::vector<actserve::ActivationSpec> specs;
  std::vector<std::string> labels;
  for (const std::string& flag : flags.plot_activations) {
    absl::StatusOr<std::vector<std::string>> texts = actserve::cli::SplitActivationList(flag);
    if (!texts.ok()) return UsageError(absl::StrCat("--activation: ", texts.status().message()));
    for (const std::string& text : *texts) {
      absl::StatusOr<actserve::ActivationSpec> spec = actserve::ParseActivationSpec(text);
      if (!spec.ok()) {
        return UsageError(absl::StrCat("bad --activation '", text, "': ", spec.status().message()));
      }
      if (!actserve::GetActivationInfo(spec->kind).elementwise) {
        return UsageError(absl::StrCat(
            "plot draws elementwise activations; '", text,
            "' normalizes over a whole dimension, so f(x) of one x is not defined"));
      }
      specs.push_back(*spec);
      labels.push_back(actserve::FormatActivationSpec(*spec));
    }
  }
  absl::StatusOr<std::pair<double, double>> range =
      actserve::cli::ParseRange(flags.range);
  if (!range.ok()) return UsageError(absl::StrCat("--range: ", range.status().message()));
  const int points = flags.points;
  if (points < kMinPlotPoints || points > kMaxPlotPoints) {
    return UsageError(absl::StrCat("--points must be between ", kMinPlotPoints, " and ",
                                   kMaxPlotPoints, ", got ", points));
  }
  actserve::DType dtype = actserve::DType::kFloat64;
  if (!flags.dtype.empty()) {
    absl::StatusOr<actserve::DType> parsed =
        actserve::cli::ParseDTypeFlag(flags.dtype);
    if (!parsed.ok()) return UsageError(absl::StrCat("--dtype: ", parsed.status().message()));
    dtype = *parsed;
  }

  // x_i = lo + (hi - lo) * i / (points - 1), so that both ends are exact.
  std::vector<double> xs(static_cast<size_t>(points));
  const auto [lo, hi] = *range;
  for (int i = 0; i < points; ++i) {
    xs[static_cast<size_t>(i)] = i == points - 1 ? hi : lo + (hi - lo) * i / (points - 1);
  }
  absl::StatusOr<actserve::Tensor> x =
      actserve::Tensor::FromDoubles(dtype, {static_cast<int64_t>(points)}, xs);
  if (!x.ok()) return Fail(x.status(), "making the x values");
  // In a narrow dtype the server sees the rounded x, and that is where its values belong.
  xs = x->ToDoubles();
  actserve::Batch batch;
  for (const actserve::ActivationSpec& spec : specs) {
    batch.Add(x->view(), spec, actserve::Mode::kForwardBackward);
  }
  absl::StatusOr<std::vector<actserve::ItemOutput>> outputs = client.Compute(batch);
  if (!outputs.ok()) {
    return Fail(outputs.status(), absl::StrCat("plot on ", flags.target));
  }

  std::vector<actserve::cli::PlotCurve> curves;
  for (size_t i = 0; i < specs.size(); ++i) {
    const actserve::ItemOutput& item = (*outputs)[i];
    if (!item.output.has_value() || !item.grad_input.has_value()) {
      return Fail(absl::InvalidArgumentError("the server's reply has no output or gradient"),
                  labels[i]);
    }
    const int color = static_cast<int>(i);
    curves.push_back({labels[i], item.output->ToDoubles(), color, /*dashed=*/false});
    curves.push_back({labels[i] + "\u2032", item.grad_input->ToDoubles(), color, /*dashed=*/true});
  }
  actserve::cli::PlotOptions options;
  options.title = flags.title;
  if (options.title.empty()) options.title = "f(x) (solid) and f\u2032(x) (dashed)";
  options.y_label = "f(x), f\u2032(x)";
  absl::StatusOr<std::string> svg = actserve::cli::RenderSvgPlot(xs, curves, options);
  if (!svg.ok()) return Fail(svg.status(), "drawing the plot");
  const std::string path = flags.svg;
  std::FILE* file = std::fopen(path.c_str(), "wb");
  const bool written = file != nullptr &&
                       std::fwrite(svg->data(), 1, svg->size(), file) == svg->size() &&
                       std::fclose(file) == 0;
  if (!written) {
    if (file != nullptr) std::fclose(file);
    return Fail(absl::PermissionDeniedError(absl::StrCat("cannot write '", path, "'")),
                "writing the plot");
  }
  std::printf("wrote %s: %s on [%s, %s], %d points\n", path.c_str(),
              absl::StrJoin(labels, ", ").c_str(),
              actserve::cli::FormatNumber(lo, actserve::DType::kFloat64).c_str(),
              actserve::cli::FormatNumber(hi, actserve::DType::kFloat64).c_str(), points);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() != 2) {
    return UsageError(positional.size() < 2
                          ? "no command given (list, compute, health, plot, bench)"
                          : "give one command (list, compute, health, plot, bench)");
  }
  const std::string command = positional[1];
  const CommandLine flags = ReadFlags(argc, argv);
  if (command == "bench") return actserve::bench::RunBenchCommand(argc, argv, flags.target);
  absl::StatusOr<actserve::ClientOptions> options = ClientOptionsFrom(flags);
  if (!options.ok()) return Fail(options.status(), "--token_file");
  const actserve::Client client(flags.target, *std::move(options));
  if (command == "list") return RunList(client, flags);
  if (command == "compute") return RunCompute(client, flags);
  if (command == "health") return RunHealth(client, flags);
  if (command == "plot") return RunPlot(client, flags);
  return UsageError(
      absl::StrCat("unknown command '", command, "' (list, compute, health, plot, bench)"));
}
