// actctl: the command-line client of an actserve server.
//
//   actctl list
//   actctl compute --activation=gelu --values=-2,-1,0,1,2
//   actctl compute --activation="leaky_relu(negative_slope=0.2)" --input=x.npy \
//       --output=y.npy --grad_input=dx.npy
//   actctl health
//
// Exit codes: 0 success (health: SERVING); 1 the operation failed (an error from the
// server, a file that cannot be read, health not SERVING or the server unreachable);
// 2 a usage error (unknown subcommand, bad flag value).
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "actserve/batch.h"
#include "actserve/client.h"
#include "actserve/tensor.h"
#include "client/cli_format.h"
#include "client/npy.h"
#include "src/activation_spec.h"

ABSL_FLAG(std::string, target, "localhost:50051",
          "the server: host:port, dns:///host:port, or ipv4:addr:port,addr:port");
ABSL_FLAG(absl::Duration, deadline, absl::Seconds(30), "deadline of each call, e.g. 30s, 500ms");
ABSL_FLAG(std::string, activation, "gelu",
          "compute: the activation in text form, e.g. relu, "
          "\"leaky_relu(negative_slope=0.2)\", \"gelu(approximate=tanh)\"");
ABSL_FLAG(std::string, values, "", "compute: inline input values, e.g. -2,-1,0,1,2");
ABSL_FLAG(std::string, input, "", "compute: input tensor x as a .npy file");
ABSL_FLAG(std::string, output, "", "compute: write the output y to this .npy file");
ABSL_FLAG(std::string, grad_output, "",
          "compute: dy as a .npy file (x's shape, converted to x's dtype); absent: dy = 1, "
          "so dx = f'(x)");
ABSL_FLAG(std::string, grad_input, "", "compute: write the gradient dx to this .npy file");
ABSL_FLAG(std::string, dtype, "",
          "compute: float32, float64, float16 or bfloat16. Default: float32 for --values, "
          "the file's dtype for --input (a '<u2' file needs --dtype=bfloat16); another "
          "dtype converts the values, rounding to nearest-even");
ABSL_FLAG(std::string, mode, "forward_backward", "compute: forward, backward or forward_backward");
ABSL_FLAG(std::string, service, "", "health: the service to ask about; empty: the server");

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
// Inputs up to this many elements print as a table; bigger ones as a summary.
constexpr int64_t kMaxTableElements = 64;

constexpr char kUsage[] = R"usage(the command-line client of an actserve server.

Usage:
  actctl [--target=host:port] [--deadline=30s] <command> [flags]

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

actserve::ClientOptions OptionsFromFlags() {
  actserve::ClientOptions options;
  options.deadline = absl::GetFlag(FLAGS_deadline);
  return options;
}

int RunList(const actserve::Client& client) {
  absl::StatusOr<actserve::ServiceDescription> description = client.ListActivations();
  if (!description.ok()) {
    return Fail(description.status(), absl::StrCat("list from ", absl::GetFlag(FLAGS_target)));
  }
  std::fputs(actserve::cli::FormatServiceDescription(*description).c_str(), stdout);
  return 0;
}

int RunHealth(const actserve::Client& client) {
  absl::StatusOr<actserve::HealthStatus> health = client.Health(absl::GetFlag(FLAGS_service));
  if (!health.ok()) {
    return Fail(health.status(),
                absl::StrCat("cannot check the health of ", absl::GetFlag(FLAGS_target)));
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

int RunCompute(const actserve::Client& client) {
  const std::string activation_text = absl::GetFlag(FLAGS_activation);
  absl::StatusOr<actserve::ActivationSpec> spec = actserve::ParseActivationSpec(activation_text);
  if (!spec.ok()) {
    return UsageError(
        absl::StrCat("bad --activation='", activation_text, "': ", spec.status().message()));
  }
  absl::StatusOr<actserve::Mode> mode = actserve::cli::ParseMode(absl::GetFlag(FLAGS_mode));
  if (!mode.ok()) return UsageError(absl::StrCat("--mode: ", mode.status().message()));
  std::optional<actserve::DType> dtype;
  if (!absl::GetFlag(FLAGS_dtype).empty()) {
    absl::StatusOr<actserve::DType> parsed =
        actserve::cli::ParseDTypeFlag(absl::GetFlag(FLAGS_dtype));
    if (!parsed.ok()) return UsageError(absl::StrCat("--dtype: ", parsed.status().message()));
    dtype = *parsed;
  }
  const std::string values_flag = absl::GetFlag(FLAGS_values);
  const std::string input_path = absl::GetFlag(FLAGS_input);
  if (values_flag.empty() == input_path.empty()) {
    return UsageError("compute needs exactly one of --values and --input");
  }
  const std::string output_path = absl::GetFlag(FLAGS_output);
  const std::string grad_input_path = absl::GetFlag(FLAGS_grad_input);
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
  if (const std::string path = absl::GetFlag(FLAGS_grad_output); !path.empty()) {
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
                                               " on ", absl::GetFlag(FLAGS_target)));
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

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() != 2) {
    return UsageError(positional.size() < 2 ? "no command given (list, compute, health)"
                                            : "give one command (list, compute, health)");
  }
  const std::string command = positional[1];
  const actserve::Client client(absl::GetFlag(FLAGS_target), OptionsFromFlags());
  if (command == "list") return RunList(client);
  if (command == "compute") return RunCompute(client);
  if (command == "health") return RunHealth(client);
  return UsageError(absl::StrCat("unknown command '", command, "' (list, compute, health)"));
}
