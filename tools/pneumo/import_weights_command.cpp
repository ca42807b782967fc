// `pneumo import-weights`: checks a safetensors file of PyTorch weights (a timm ImageNet export, see
// docs/models.md) against a network and reports what matched, what is missing and what does not fit;
// with --out it writes the network's initial checkpoint with those weights loaded (pneumo layout).
// Convention: the file holds PyTorch layouts (conv KCRS); they are transposed to KRSC on load.
// The safetensors reader is nn/checkpoint.h; on a branch where it has not been merged yet the command only
// says so (checked with __has_include so the tree builds either way).
#include <cstdio>
#include <memory>

#include "kernels/check.h"
#if __has_include("nn/checkpoint.h")
#include "nn/checkpoint.h"
#define PNEUMO_HAVE_CHECKPOINT_IO 1
#else
#define PNEUMO_HAVE_CHECKPOINT_IO 0
#endif
#include "nn/models/registry.h"
#include "nn/models/weights_import.h"
#include "tools/pneumo/command.h"

namespace {

struct ImportOptions {
  std::string model, weights, out;
  bool all = false;
};

int run_import_weights(const ImportOptions& o) {
  using namespace pneumo;
  const std::string &model_name = o.model, &path = o.weights, &out = o.out;
  const bool all = o.all;
#if !PNEUMO_HAVE_CHECKPOINT_IO
  (void)all;
  (void)out;
  (void)path;
  PNEUMO_FAIL("import-weights: this build has no safetensors reader (nn/checkpoint.h not merged yet)");
#else
  auto model = nn::models::create_model(model_name);
  nn::SafetensorsContents file = nn::load_safetensors(path);
  nn::models::ImportReport r = nn::models::import_pytorch_tensors(*model, file.tensors, /*apply=*/!out.empty());
  std::printf("%s -> %s (%lld parameters)\n", path.c_str(), model_name.c_str(),
              static_cast<long long>(model->parameter_count()));
  std::printf("%s", r.summary(all).c_str());
  // A bare-encoder file is complete when every encoder tensor is there; the decoder and heads start fresh.
  const bool ok = r.complete();
  std::printf("%s: %s\n", ok ? "OK" : "INCOMPLETE",
              r.prefix.empty() ? "checked against the whole network"
                               : "checked against the encoder (decoder and heads keep their initialisation)");
  if (!out.empty()) {
    PNEUMO_CHECK(ok, "import-weights: not writing ", out, ": the file does not fit ", model_name);
    nn::save_state(*model, out, {{"model", model_name}, {"imported_from", path}});
    std::printf("wrote %s\n", out.c_str());
  }
  return ok ? 0 : 1;
#endif
}

PNEUMO_COMMAND("import-weights", "check PyTorch/timm weights (safetensors) against a network; convert them",
               [](CLI::App& app) {
                 auto o = std::make_shared<ImportOptions>();
                 pneumo::cli::option(app, "--model", o->model, "network name (pneumo info --model NAME)").required();
                 pneumo::cli::option(app, "--weights", o->weights, "safetensors file of PyTorch/timm weights")
                     .required()
                     .existing_file();
                 pneumo::cli::out_option(app, o->out, "write the network with the weights loaded as a checkpoint");
                 pneumo::cli::flag(app, "--all", o->all, "list every tensor name");
                 pneumo::cli::footer(
                     app,
                     "Matches the file's tensors to the network by name (timm names; a bare encoder file is matched\n"
                     "under 'encoder.'), transposing conv weights from PyTorch's KCRS to pneumo's KRSC, and lists what\n"
                     "matched, what is missing, what does not fit and what the network has no use for. Exit code 0\n"
                     "when everything the file should provide fits.");
                 return [o] { return run_import_weights(*o); };
               });

}  // namespace
