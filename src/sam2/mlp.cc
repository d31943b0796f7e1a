#include "litseg/sam2/mlp.h"

#include <string>

#include "litseg/core/error.h"

namespace litseg::sam2 {

MlpImpl::MlpImpl(int64_t input_dim, int64_t hidden_dim, int64_t output_dim, int num_layers,
                 MlpActivation act, bool sigmoid)
    : activation(act), sigmoid_output(sigmoid) {
  if (num_layers < 1 || input_dim < 1 || hidden_dim < 1 || output_dim < 1)
    throw Error("MLP: invalid sizes (input " + std::to_string(input_dim) + ", hidden " + std::to_string(hidden_dim) +
                ", output " + std::to_string(output_dim) + ", layers " + std::to_string(num_layers) + ")");
  layers = register_module("layers", torch::nn::ModuleList());
  for (int i = 0; i < num_layers; ++i) {
    const int64_t in = i == 0 ? input_dim : hidden_dim;
    const int64_t out = i == num_layers - 1 ? output_dim : hidden_dim;
    torch::nn::Linear linear(in, out);
    layers->push_back(linear);
    linears.push_back(linear);
  }
}

torch::Tensor MlpImpl::forward(const torch::Tensor& input) {
  torch::Tensor x = input;
  const size_t n = linears.size();
  for (size_t i = 0; i < n; ++i) {
    x = linears[i]->forward(x);
    if (i + 1 < n) x = activation == MlpActivation::kReLU ? torch::relu(x) : torch::gelu(x);
  }
  return sigmoid_output ? torch::sigmoid(x) : x;
}

LayerNorm2dImpl::LayerNorm2dImpl(int64_t num_channels, double epsilon) : eps(epsilon) {
  weight = register_parameter("weight", torch::ones({num_channels}));
  bias = register_parameter("bias", torch::zeros({num_channels}));
}

torch::Tensor LayerNorm2dImpl::forward(const torch::Tensor& x) {
  if (x.dim() != 4 || x.size(1) != weight.size(0))
    throw Error("LayerNorm2d: expected [B, " + std::to_string(weight.size(0)) + ", H, W], got " +
                std::to_string(x.dim()) + "-d input with " + std::to_string(x.dim() > 1 ? x.size(1) : 0) +
                " channels");
  // Same operation order as the reference, so float32 rounding matches.
  const torch::Tensor centred = x - x.mean(1, /*keepdim=*/true);
  const torch::Tensor variance = centred.pow(2).mean(1, /*keepdim=*/true);
  const torch::Tensor normalised = centred / torch::sqrt(variance + eps);
  return weight.view({-1, 1, 1}) * normalised + bias.view({-1, 1, 1});
}

}  // namespace litseg::sam2
