// RUN: convir-opt %s | convir-opt | filecheck %s
// RUN: convir-opt %s --print-op-generic | convir-opt | filecheck %s

// conv.reduce and conv.resize print in their custom format and parse back to the same IR.

// CHECK-LABEL: func.func @reduce_and_resize
func.func @reduce_and_resize(%x: tensor<1x3x8x8xf32>, %b: tensor<1x2x8x8x8xf32>) -> (tensor<1x3xf32>, tensor<1x1x8x8xf32>, tensor<1x3x16x16xf32>, tensor<1x2x5x3x8xf32>) {
  // CHECK: conv.reduce %{{.*}} {kind = "mean", axes = array<i64: 2, 3>} : tensor<1x3x8x8xf32> -> tensor<1x3xf32>
  %m = conv.reduce %x {kind = "mean", axes = array<i64: 2, 3>} : tensor<1x3x8x8xf32> -> tensor<1x3xf32>
  // CHECK: conv.reduce %{{.*}} {kind = "max", axes = array<i64: 1>, keepdims} : tensor<1x3x8x8xf32> -> tensor<1x1x8x8xf32>
  %c = conv.reduce %x {kind = "max", axes = array<i64: 1>, keepdims} : tensor<1x3x8x8xf32> -> tensor<1x1x8x8xf32>
  // CHECK: conv.resize %{{.*}} {mode = "nearest", coordinate_transformation_mode = "asymmetric", nearest_mode = "floor", scales = array<f32: 2.000000e+00, 2.000000e+00>} : tensor<1x3x8x8xf32> -> tensor<1x3x16x16xf32>
  %n = conv.resize %x {mode = "nearest", coordinate_transformation_mode = "asymmetric", nearest_mode = "floor", scales = array<f32: 2.0, 2.0>} : tensor<1x3x8x8xf32> -> tensor<1x3x16x16xf32>
  // An NCHWc resize keeps the blocks and lanes.
  // CHECK: conv.resize %{{.*}} {mode = "linear", coordinate_transformation_mode = "pytorch_half_pixel", scales = array<f32: 6.250000e-01, 3.750000e-01>} : tensor<1x2x8x8x8xf32> -> tensor<1x2x5x3x8xf32>
  %l = conv.resize %b {mode = "linear", coordinate_transformation_mode = "pytorch_half_pixel", scales = array<f32: 0.625, 0.375>} : tensor<1x2x8x8x8xf32> -> tensor<1x2x5x3x8xf32>
  func.return %m, %c, %n, %l : tensor<1x3xf32>, tensor<1x1x8x8xf32>, tensor<1x3x16x16xf32>, tensor<1x2x5x3x8xf32>
}
