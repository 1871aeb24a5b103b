// RUN: convir-opt %s -p dce | filecheck %s

// conv ops are Pure, so xDSL's own `dce` removes the ones whose results are unused (here a conv
// and, once it is gone, its weight), and keeps every op the returned value depends on. A removed
// dense_resource constant's blob is no longer printed.

func.func @main(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = conv.constant dense<1.0> : tensor<2x2x1x1xf32>
  %dead_w = conv.constant dense_resource<dead_weight> : tensor<2x2x1x1xf32>
  %dead = conv.conv2d %x, %dead_w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32> -> tensor<1x2x4x4xf32>
  %y = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32> -> tensor<1x2x4x4xf32>
  func.return %y : tensor<1x2x4x4xf32>
}

{-#
  dialect_resources: {
    builtin: {
      dead_weight: "0x040000000000803f0000803f0000803f0000803f"
    }
  }
#-}

// CHECK-LABEL: func.func @main
// CHECK-NEXT:    %[[W:.*]] = conv.constant dense<1.000000e+00> : tensor<2x2x1x1xf32>
// CHECK-NEXT:    %[[Y:.*]] = conv.conv2d %x, %[[W]]
// CHECK-NEXT:    func.return %[[Y]]
// CHECK-NOT:     dead_weight
