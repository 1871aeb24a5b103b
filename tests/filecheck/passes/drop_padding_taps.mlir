// RUN: convir-opt %s -p conv-drop-padding-taps --split-input-file | filecheck %s

// DeepLabV3's atrous pyramid at a small input: a 3x3 conv with dilation 36 and padding 36 on a
// 14x14 map reads the input only at its centre tap, so it becomes a 1x1 conv without padding.

func.func @atrous(%x: tensor<1x4x14x14xf32>) -> tensor<1x2x14x14xf32> {
  %w = conv.constant dense<0.5> : tensor<2x4x3x3xf32>
  %y = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 36, 36, 36, 36>, dilations = array<i64: 36, 36>, group = 1 : i64} : tensor<1x4x14x14xf32>, tensor<2x4x3x3xf32> -> tensor<1x2x14x14xf32>
  func.return %y : tensor<1x2x14x14xf32>
}

// CHECK-LABEL: func.func @atrous
// CHECK:         %[[W:.*]] = conv.constant {{.*}} : tensor<2x4x1x1xf32>
// CHECK-NEXT:    %[[Y:.*]] = conv.conv2d %x, %[[W]] {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : {{.*}} -> tensor<1x2x14x14xf32>
// CHECK-NEXT:    func.return %[[Y]]

// -----

// Only the rows are cut (dilation 8 on 6 rows, 1 on 20 columns); the 3x3 kernel becomes 1x3
// and keeps its column padding and dilation.

func.func @rows_only(%x: tensor<1x2x6x20xf32>) -> tensor<1x3x6x20xf32> {
  %w = conv.constant dense<0.5> : tensor<3x2x3x3xf32>
  %y = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 8, 1, 8, 1>, dilations = array<i64: 8, 1>, group = 1 : i64} : tensor<1x2x6x20xf32>, tensor<3x2x3x3xf32> -> tensor<1x3x6x20xf32>
  func.return %y : tensor<1x3x6x20xf32>
}

// CHECK-LABEL: func.func @rows_only
// CHECK:         conv.conv2d %x, %{{.*}} {strides = array<i64: 1, 1>, pads = array<i64: 0, 1, 0, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x6x20xf32>, tensor<3x2x1x3xf32> -> tensor<1x3x6x20xf32>

// -----

// Dilation 12 on 14 rows: every tap reads the input for some output row, nothing is cut.

func.func @all_live(%x: tensor<1x2x14x14xf32>) -> tensor<1x3x14x14xf32> {
  %w = conv.constant dense<0.5> : tensor<3x2x3x3xf32>
  %y = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 12, 12, 12, 12>, dilations = array<i64: 12, 12>, group = 1 : i64} : tensor<1x2x14x14xf32>, tensor<3x2x3x3xf32> -> tensor<1x3x14x14xf32>
  func.return %y : tensor<1x3x14x14xf32>
}

// CHECK-LABEL: func.func @all_live
// CHECK:         conv.conv2d %x, %w {{.*}}pads = array<i64: 12, 12, 12, 12>, dilations = array<i64: 12, 12>{{.*}} tensor<3x2x3x3xf32>
