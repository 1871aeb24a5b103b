// RUN: convir-opt %s --split-input-file --verify-diagnostics | filecheck %s

// The verifiers of the math ops name the op and the mismatch.

func.func @unknown_activation(%x: tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32> {
  %y = conv.activation %x {kind = "gelu_fast"} : tensor<1x4x6x6xf32> -> tensor<1x4x6x6xf32>
  func.return %y : tensor<1x4x6x6xf32>
}
// CHECK: 'conv.activation' kind 'gelu_fast' is unknown; expected one of {{.*}}gelu, gelu_tanh, mish, softplus, sqrt, reciprocal, pow

// -----

func.func @prelu_slope_widens(%x: tensor<1x4x6x1xf32>, %s: tensor<1x1x1x5xf32>) -> tensor<1x4x6x5xf32> {
  %y = conv.binary %x, %s {kind = "prelu"} : tensor<1x4x6x1xf32>, tensor<1x1x1x5xf32> -> tensor<1x4x6x5xf32>
  func.return %y : tensor<1x4x6x5xf32>
}
// CHECK: 'conv.binary' prelu slope of shape [1, 1, 1, 5] must broadcast to the input shape [1, 4, 6, 1]

// -----

func.func @layer_norm_axis(%x: tensor<2x6xf32>, %g: tensor<6xf32>) -> tensor<2x6xf32> {
  %y = conv.layer_norm %x, %g, %g {axis = 2 : i64, epsilon = 1.0e-05 : f32} : tensor<2x6xf32>, tensor<6xf32>, tensor<6xf32> -> tensor<2x6xf32>
  func.return %y : tensor<2x6xf32>
}
// CHECK: 'conv.layer_norm' axis 2 is out of range for rank 2

// -----

func.func @layer_norm_scale_shape(%x: tensor<2x3x6xf32>, %g: tensor<6xf32>) -> tensor<2x3x6xf32> {
  %y = conv.layer_norm %x, %g, %g {axis = 1 : i64, epsilon = 1.0e-05 : f32} : tensor<2x3x6xf32>, tensor<6xf32>, tensor<6xf32> -> tensor<2x3x6xf32>
  func.return %y : tensor<2x3x6xf32>
}
// CHECK: 'conv.layer_norm' scale must have shape [3, 6], got tensor<6xf32>

// -----

func.func @layer_norm_result(%x: tensor<2x6xf32>, %g: tensor<6xf32>) -> tensor<2x7xf32> {
  %y = conv.layer_norm %x, %g, %g {axis = 1 : i64, epsilon = 1.0e-05 : f32} : tensor<2x6xf32>, tensor<6xf32>, tensor<6xf32> -> tensor<2x7xf32>
  func.return %y : tensor<2x7xf32>
}
// CHECK: 'conv.layer_norm' output type tensor<2x7xf32> differs from input type
