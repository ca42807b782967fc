// PyTorch state dict -> pneumo module (see weights_import.h).
#include "nn/models/weights_import.h"

#include <map>
#include <set>
#include <sstream>

#include "kernels/check.h"

namespace pneumo::nn::models {

Tensor pytorch_to_engine_layout(const Tensor& pt) {
  if (pt.dim() != 4) return pt;
  const Shape& s = pt.shape();
  const int64_t K = s[0], C = s[1], R = s[2], S = s[3];
  Tensor src = pt.cpu().to(DType::F64);
  Tensor out = Tensor::empty({K, R, S, C}, DType::F64);
  const double* in = src.data<double>();
  double* o = out.data<double>();
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t r = 0; r < R; ++r)
        for (int64_t q = 0; q < S; ++q) o[((k * R + r) * S + q) * C + c] = in[((k * C + c) * R + r) * S + q];
  return out.to(pt.dtype());
}

Shape engine_to_pytorch_shape(const Shape& e) {
  if (e.size() != 4) return e;
  return {e[0], e[3], e[1], e[2]};
}

std::string ImportReport::summary(bool list_all) const {
  std::ostringstream os;
  os << "matched " << matched.size() << ", missing " << missing.size() << ", not fitting " << mismatched.size()
     << ", unused in file " << unused.size();
  if (!prefix.empty())
    os << " (a bare-encoder file, keys prefixed with '" << prefix << "'; " << fresh.size()
       << " decoder/head tensors keep their initialisation)";
  os << "\n";
  const size_t limit = list_all ? static_cast<size_t>(-1) : 20;
  auto list = [&](const char* title, const std::vector<std::string>& v) {
    if (v.empty()) return;
    os << title << ":\n";
    for (size_t i = 0; i < v.size() && i < limit; ++i) os << "  " << v[i] << "\n";
    if (v.size() > limit) os << "  ... " << v.size() - limit << " more (--all lists every one)\n";
  };
  list("missing (model tensors absent from the file)", missing);
  if (!mismatched.empty()) {
    os << "not fitting:\n";
    for (size_t i = 0; i < mismatched.size() && i < limit; ++i)
      os << "  " << mismatched[i].first << ": " << mismatched[i].second << "\n";
  }
  list("unused (file tensors the model has no place for)", unused);
  return os.str();
}

ImportReport import_pytorch_tensors(Module& model, const std::vector<std::pair<std::string, Tensor>>& tensors,
                                    bool apply) {
  ImportReport report;
  std::map<std::string, Tensor> target;  // model name -> current tensor (for shape/dtype/device)
  std::vector<std::string> order;
  for (auto& kv : model.state_dict()) {
    target[kv.first] = kv.second;
    order.push_back(kv.first);
  }
  // A bare-encoder file (timm export) loaded into a network whose encoder sits under "encoder.".
  bool any_exact = false;
  for (const auto& kv : tensors) any_exact = any_exact || target.count(kv.first);
  if (!any_exact) {
    for (const auto& kv : tensors)
      if (target.count("encoder." + kv.first)) {
        report.prefix = "encoder.";
        break;
      }
  }
  std::set<std::string> seen;
  for (const auto& kv : tensors) {
    const std::string name = report.prefix + kv.first;
    auto it = target.find(name);
    if (it == target.end()) {
      report.unused.push_back(kv.first);
      continue;
    }
    seen.insert(name);
    const Tensor& want = it->second;
    const Tensor& have = kv.second;
    const bool floating = want.dtype() == DType::F32 || want.dtype() == DType::F64 || want.dtype() == DType::BF16 ||
                          want.dtype() == DType::F16;
    Tensor value = floating ? pytorch_to_engine_layout(have) : have;
    if (value.shape() != want.shape() && !(value.numel() == 1 && want.numel() == 1)) {
      report.mismatched.emplace_back(name, "file " + shape_str(have.shape()) + " (pytorch layout) vs model " +
                                               shape_str(engine_to_pytorch_shape(want.shape())) + " (pytorch layout)");
      continue;
    }
    report.matched.push_back(name);
    if (apply) model.set_tensor(name, value.reshape(want.shape()).to(want.dtype()).to(want.device()));
  }
  for (const auto& name : order) {
    if (seen.count(name)) continue;
    const DType dt = target[name].dtype();
    if (dt != DType::F32 && dt != DType::F64 && dt != DType::BF16 && dt != DType::F16) continue;
    if (!report.prefix.empty() && name.rfind(report.prefix, 0) != 0)
      report.fresh.push_back(name);
    else
      report.missing.push_back(name);
  }
  return report;
}

}  // namespace pneumo::nn::models
