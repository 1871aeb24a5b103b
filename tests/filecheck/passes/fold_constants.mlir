// RUN: convir-opt %s -p conv-fold-constants | filecheck %s

// A chain of constant ops folds to one constant; the constants it consumed are erased. The
// folded value, [1..6] + 0.5, is in the printed blob (4-byte alignment, then 1.5, 2.5, ...).

func.func @chain() -> tensor<1x6xf32> {
  %a = conv.constant dense<[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]> : tensor<2x3xf32>
  %b = conv.constant dense<0.5> : tensor<1x6xf32>
  %flat = conv.reshape %a : tensor<2x3xf32> -> tensor<1x6xf32>
  %sum = conv.binary %flat, %b {kind = "add"} : tensor<1x6xf32>, tensor<1x6xf32> -> tensor<1x6xf32>
  func.return %sum : tensor<1x6xf32>
}

// CHECK-LABEL: func.func @chain
// CHECK-NEXT:    %[[SUM:.*]] = conv.constant dense_resource<[[BLOB:[^>]+]]> : tensor<1x6xf32>
// CHECK-NEXT:    func.return %[[SUM]] : tensor<1x6xf32>

// An op with a computed operand stays; its constant operand chain still folds, and a constant
// that keeps another user is kept.

func.func @partly(%x: tensor<1x6xf32>) -> (tensor<1x6xf32>, tensor<2x3xf32>) {
  %a = conv.constant dense<1.0> : tensor<2x3xf32>
  %flat = conv.reshape %a : tensor<2x3xf32> -> tensor<1x6xf32>
  %sum = conv.binary %x, %flat {kind = "add"} : tensor<1x6xf32>, tensor<1x6xf32> -> tensor<1x6xf32>
  func.return %sum, %a : tensor<1x6xf32>, tensor<2x3xf32>
}

// CHECK-LABEL: func.func @partly
// CHECK-DAG:     %[[A:.*]] = conv.constant dense<1.000000e+00> : tensor<2x3xf32>
// CHECK-DAG:     %[[FLAT:.*]] = conv.constant dense_resource<{{.*}}> : tensor<1x6xf32>
// CHECK-NOT:     conv.reshape
// CHECK:         %[[S:.*]] = conv.binary %x, %[[FLAT]] {kind = "add"}
// CHECK-NEXT:    func.return %[[S]], %[[A]]

// A constant whose blob is not in the input (printed with elided weights) is unknown: no fold.

func.func @elided() -> tensor<1x6xf32> {
  %a = conv.constant dense_resource<unknown> : tensor<2x3xf32>
  %flat = conv.reshape %a : tensor<2x3xf32> -> tensor<1x6xf32>
  func.return %flat : tensor<1x6xf32>
}

// CHECK-LABEL: func.func @elided
// CHECK:         conv.reshape

// Ops of other dialects are not folded, even on conv constants.

func.func @other_dialect() -> tensor<2xf32> {
  %a = conv.constant dense<1.0> : tensor<2xf32>
  %s = arith.addf %a, %a : tensor<2xf32>
  func.return %s : tensor<2xf32>
}

// CHECK-LABEL: func.func @other_dialect
// CHECK:         conv.constant
// CHECK-NEXT:    arith.addf

// CHECK: [[BLOB]]: "0x040000000000c03f0000204000006040000090400000b0400000d040"
