// RUN: convir-opt %s --split-input-file --verify-diagnostics | filecheck %s

// conv.reduce and conv.resize reject bad shapes and attributes naming the op and the mismatch.

func.func @reduce_wrong_output(%x: tensor<1x3x8x8xf32>) -> tensor<1x3x1x1xf32> {
  %y = conv.reduce %x {kind = "mean", axes = array<i64: 2, 3>} : tensor<1x3x8x8xf32> -> tensor<1x3x1x1xf32>
  func.return %y : tensor<1x3x1x1xf32>
}
// CHECK: 'conv.reduce' output must have shape [1, 3], got tensor<1x3x1x1xf32>

// -----

func.func @reduce_unsorted_axes(%x: tensor<1x3x8x8xf32>) -> tensor<1x3xf32> {
  %y = conv.reduce %x {kind = "sum", axes = array<i64: 3, 2>} : tensor<1x3x8x8xf32> -> tensor<1x3xf32>
  func.return %y : tensor<1x3xf32>
}
// CHECK: 'conv.reduce' axes [3, 2] must be sorted, distinct, non-empty axes of rank 4

// -----

func.func @reduce_axis_out_of_range(%x: tensor<1x3xf32>) -> tensor<1xf32> {
  %y = conv.reduce %x {kind = "sum", axes = array<i64: 2>} : tensor<1x3xf32> -> tensor<1xf32>
  func.return %y : tensor<1xf32>
}
// CHECK: 'conv.reduce' axes [2] must be sorted, distinct, non-empty axes of rank 2

// -----

func.func @reduce_unknown_kind(%x: tensor<1x3xf32>) -> tensor<1xf32> {
  %y = conv.reduce %x {kind = "prod", axes = array<i64: 1>} : tensor<1x3xf32> -> tensor<1xf32>
  func.return %y : tensor<1xf32>
}
// CHECK: 'conv.reduce' kind 'prod' is unknown; expected one of mean, max, sum

// -----

func.func @resize_changes_channels(%x: tensor<1x3x8x8xf32>) -> tensor<1x4x16x16xf32> {
  %y = conv.resize %x {mode = "linear", coordinate_transformation_mode = "half_pixel", scales = array<f32: 2.0, 2.0>} : tensor<1x3x8x8xf32> -> tensor<1x4x16x16xf32>
  func.return %y : tensor<1x4x16x16xf32>
}
// CHECK: 'conv.resize' output [1, 4, 16, 16] must keep the input's batch and channels

// -----

func.func @resize_nearest_without_rounding(%x: tensor<1x3x8x8xf32>) -> tensor<1x3x16x16xf32> {
  %y = conv.resize %x {mode = "nearest", coordinate_transformation_mode = "asymmetric", scales = array<f32: 2.0, 2.0>} : tensor<1x3x8x8xf32> -> tensor<1x3x16x16xf32>
  func.return %y : tensor<1x3x16x16xf32>
}
// CHECK: 'conv.resize' nearest_mode must be one of round_prefer_floor, round_prefer_ceil, floor, ceil, got None

// -----

func.func @resize_linear_with_rounding(%x: tensor<1x3x8x8xf32>) -> tensor<1x3x16x16xf32> {
  %y = conv.resize %x {mode = "linear", coordinate_transformation_mode = "asymmetric", nearest_mode = "floor", scales = array<f32: 2.0, 2.0>} : tensor<1x3x8x8xf32> -> tensor<1x3x16x16xf32>
  func.return %y : tensor<1x3x16x16xf32>
}
// CHECK: 'conv.resize' nearest_mode is given for mode 'linear'; only nearest reads it

// -----

func.func @resize_unknown_transform(%x: tensor<1x3x8x8xf32>) -> tensor<1x3x16x16xf32> {
  %y = conv.resize %x {mode = "linear", coordinate_transformation_mode = "tf_crop_and_resize", scales = array<f32: 2.0, 2.0>} : tensor<1x3x8x8xf32> -> tensor<1x3x16x16xf32>
  func.return %y : tensor<1x3x16x16xf32>
}
// CHECK: 'conv.resize' coordinate_transformation_mode 'tf_crop_and_resize' is unknown

// -----

func.func @resize_bad_scales(%x: tensor<1x3x8x8xf32>) -> tensor<1x3x16x16xf32> {
  %y = conv.resize %x {mode = "linear", coordinate_transformation_mode = "half_pixel", scales = array<f32: 2.0, 0.0>} : tensor<1x3x8x8xf32> -> tensor<1x3x16x16xf32>
  func.return %y : tensor<1x3x16x16xf32>
}
// CHECK: 'conv.resize' scales must be 2 positive values [sh, sw], got [2.0, 0.0]

// -----

func.func @resize_integer_scales(%x: tensor<1x3x8x8xf32>) -> tensor<1x3x16x16xf32> {
  %y = conv.resize %x {mode = "linear", coordinate_transformation_mode = "half_pixel", scales = array<i64: 2, 2>} : tensor<1x3x8x8xf32> -> tensor<1x3x16x16xf32>
  func.return %y : tensor<1x3x16x16xf32>
}
// CHECK: 'conv.resize' scales must be an array of f32
