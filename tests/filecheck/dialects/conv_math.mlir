// RUN: convir-opt %s | convir-opt | filecheck %s
// RUN: convir-opt %s --print-op-generic | convir-opt | filecheck %s
// RUN: convir-opt %s -p conv-fuse-epilogue | filecheck %s --check-prefix=FUSED

// The math ops of ONNX's Erf, Gelu, Mish, Softplus, Sqrt, Reciprocal, Pow, PRelu and
// LayerNormalization print in their custom format and parse back to the same IR; the
// activations fuse into the conv before them like any other.

// CHECK-LABEL: func.func @math_ops
// FUSED-LABEL: func.func @math_ops
func.func @math_ops(%x: tensor<1x4x6x6xf32>, %w: tensor<4x4x1x1xf32>, %slope: tensor<4x1x1xf32>, %g: tensor<6xf32>, %b: tensor<6xf32>) -> tensor<1x4x6x6xf32> {
  %y = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x4x6x6xf32>, tensor<4x4x1x1xf32> -> tensor<1x4x6x6xf32>
  // CHECK: %[[GELU:.*]] = conv.activation %{{.*}} {kind = "gelu"} : tensor<1x4x6x6xf32> -> tensor<1x4x6x6xf32>
  // FUSED: %[[CONV:.*]] = conv.conv2d {{.*}}activation = "gelu"
  // FUSED-NOT: kind = "gelu"
  %gelu = conv.activation %y {kind = "gelu"} : tensor<1x4x6x6xf32> -> tensor<1x4x6x6xf32>
  // CHECK: conv.activation %[[GELU]] {kind = "gelu_tanh"}
  %gelu_tanh = conv.activation %gelu {kind = "gelu_tanh"} : tensor<1x4x6x6xf32> -> tensor<1x4x6x6xf32>
  // CHECK: conv.activation %{{.*}} {kind = "erf"}
  %erf = conv.activation %gelu_tanh {kind = "erf"} : tensor<1x4x6x6xf32> -> tensor<1x4x6x6xf32>
  // CHECK: conv.activation %{{.*}} {kind = "mish"}
  %mish = conv.activation %erf {kind = "mish"} : tensor<1x4x6x6xf32> -> tensor<1x4x6x6xf32>
  // CHECK: conv.activation %{{.*}} {kind = "softplus"}
  %softplus = conv.activation %mish {kind = "softplus"} : tensor<1x4x6x6xf32> -> tensor<1x4x6x6xf32>
  // CHECK: conv.activation %{{.*}} {kind = "sqrt"}
  %sqrt = conv.activation %softplus {kind = "sqrt"} : tensor<1x4x6x6xf32> -> tensor<1x4x6x6xf32>
  // CHECK: conv.activation %{{.*}} {kind = "reciprocal"}
  %reciprocal = conv.activation %sqrt {kind = "reciprocal"} : tensor<1x4x6x6xf32> -> tensor<1x4x6x6xf32>
  // CHECK: conv.activation %{{.*}} {kind = "pow", alpha = 2.000000e+00 : f32}
  %square = conv.activation %reciprocal {kind = "pow", alpha = 2.0 : f32} : tensor<1x4x6x6xf32> -> tensor<1x4x6x6xf32>
  // CHECK: %[[PRELU:.*]] = conv.binary %{{.*}}, %{{.*}} {kind = "prelu"} : tensor<1x4x6x6xf32>, tensor<4x1x1xf32> -> tensor<1x4x6x6xf32>
  %prelu = conv.binary %square, %slope {kind = "prelu"} : tensor<1x4x6x6xf32>, tensor<4x1x1xf32> -> tensor<1x4x6x6xf32>
  // CHECK: conv.layer_norm %[[PRELU]], %{{.*}}, %{{.*}} {axis = 3 : i64, epsilon = 1.000000e-06 : f32} : tensor<1x4x6x6xf32>, tensor<6xf32>, tensor<6xf32> -> tensor<1x4x6x6xf32>
  %norm = conv.layer_norm %prelu, %g, %b {axis = 3 : i64, epsilon = 1.0e-06 : f32} : tensor<1x4x6x6xf32>, tensor<6xf32>, tensor<6xf32> -> tensor<1x4x6x6xf32>
  func.return %norm : tensor<1x4x6x6xf32>
}
