// Small building blocks of the SAM 2 heads (sam2/modeling/sam2_utils.py): the multi-layer
// perceptron `MLP` and the channel-wise `LayerNorm2d` of NCHW feature maps.
//
//   litseg::sam2::Mlp head(/*input_dim=*/256, /*hidden_dim=*/256, /*output_dim=*/4, /*num_layers=*/3,
//                          litseg::sam2::MlpActivation::kReLU, /*sigmoid_output=*/true);
//   torch::Tensor scores = head->forward(tokens);  // [..., 256] -> [..., 4]
//
//   litseg::sam2::LayerNorm2d norm(/*num_channels=*/64, /*eps=*/1e-6);
//   torch::Tensor y = norm->forward(x);            // x [B, 64, H, W], normalised over C
//
// State-dict names follow the official modules: an Mlp holds a ModuleList "layers" of
// Linear ("layers.0.weight", ...); LayerNorm2d holds "weight" and "bias".
//
// Thread-safety: forward() only reads parameters; concurrent forwards are safe.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

namespace litseg::sam2 {

enum class MlpActivation { kReLU, kGELU };

// num_layers Linear layers (input -> hidden x (num_layers - 1) -> output) with the activation
// between them and, optionally, a sigmoid on the output.
struct MlpImpl : torch::nn::Module {
  MlpImpl(int64_t input_dim, int64_t hidden_dim, int64_t output_dim, int num_layers,
          MlpActivation activation = MlpActivation::kReLU, bool sigmoid_output = false);

  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::ModuleList layers;
  std::vector<torch::nn::Linear> linears;  // the same modules as `layers`, typed
  MlpActivation activation;
  bool sigmoid_output;
};
TORCH_MODULE(Mlp);

// LayerNorm over the channel dimension of [B, C, H, W] (SAM's LayerNorm2d: biased variance,
// eps inside the square root).
struct LayerNorm2dImpl : torch::nn::Module {
  explicit LayerNorm2dImpl(int64_t num_channels, double eps = 1e-6);

  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight;
  torch::Tensor bias;
  double eps;
};
TORCH_MODULE(LayerNorm2d);

}  // namespace litseg::sam2
