// RUN: convir-opt %s | convir-opt | filecheck %s
// RUN: convir-opt %s --print-op-generic | convir-opt | filecheck %s

// conv.fused prints its operands, their types and the region holding the two convs and
// conv.yield, and parses back to the same IR.

// CHECK-LABEL: func.func @dw_pw
func.func @dw_pw(%x: tensor<1x2x6x6x8xf32>, %r: tensor<1x1x6x6x8xf32>) -> tensor<1x1x6x6x8xf32> {
  %w1 = conv.constant dense<0.5> : tensor<16x1x3x3xf32>
  %b1 = conv.constant dense<0.1> : tensor<16xf32>
  %w2 = conv.constant dense<0.25> : tensor<8x16x1x1xf32>
  // CHECK: %[[Y:.*]] = conv.fused %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {algorithm = "fused", schedule = {tile_rows = 2 : i64}} : (tensor<1x2x6x6x8xf32>, tensor<16x1x3x3xf32>, tensor<16xf32>, tensor<8x16x1x1xf32>, tensor<1x1x6x6x8xf32>) -> tensor<1x1x6x6x8xf32> {
  // CHECK-NEXT: ^{{.*}}(%[[A:.*]]: tensor<1x2x6x6x8xf32>, %[[WA:.*]]: tensor<16x1x3x3xf32>, %[[BA:.*]]: tensor<16xf32>, %[[WB:.*]]: tensor<8x16x1x1xf32>, %[[R:.*]]: tensor<1x1x6x6x8xf32>):
  // CHECK-NEXT: %[[T:.*]] = conv.conv2d %[[A]], %[[WA]] bias %[[BA]] {{.*}}activation = "relu"
  // CHECK-NEXT: %[[O:.*]] = conv.conv2d %[[T]], %[[WB]] residual %[[R]]
  // CHECK-NEXT: conv.yield %[[O]] : tensor<1x1x6x6x8xf32>
  // CHECK-NEXT: }
  // CHECK-NEXT: func.return %[[Y]]
  %y = conv.fused %x, %w1, %b1, %w2, %r {algorithm = "fused", schedule = {tile_rows = 2 : i64}} : (tensor<1x2x6x6x8xf32>, tensor<16x1x3x3xf32>, tensor<16xf32>, tensor<8x16x1x1xf32>, tensor<1x1x6x6x8xf32>) -> tensor<1x1x6x6x8xf32> {
  ^bb0(%a: tensor<1x2x6x6x8xf32>, %wa: tensor<16x1x3x3xf32>, %ba: tensor<16xf32>, %wb: tensor<8x16x1x1xf32>, %rr: tensor<1x1x6x6x8xf32>):
    %t = conv.conv2d %a, %wa bias %ba {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 16 : i64, activation = "relu"} : tensor<1x2x6x6x8xf32>, tensor<16x1x3x3xf32> bias tensor<16xf32> -> tensor<1x2x6x6x8xf32>
    %o = conv.conv2d %t, %wb residual %rr {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x6x6x8xf32>, tensor<8x16x1x1xf32> residual tensor<1x1x6x6x8xf32> -> tensor<1x1x6x6x8xf32>
    conv.yield %o : tensor<1x1x6x6x8xf32>
  }
  func.return %y : tensor<1x1x6x6x8xf32>
}
