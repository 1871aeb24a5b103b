// RUN: not convir-opt %s -p conv-plan-memory 2>&1 | filecheck %s

// A concat marked in place by hand whose input is a function argument: the argument lives in
// the caller's buffer, not in the concat's, so the planner refuses rather than skip the copy.

// CHECK: 'conv.concat' is marked convir.in_place but an operand or its result is not an arena value computed by a kernel; remove convir.in_place
func.func @main(%x: tensor<1x1x4x4x8xf32>) -> tensor<1x2x4x4x8xf32> {
  %a = conv.activation %x {kind = "relu"} : tensor<1x1x4x4x8xf32> -> tensor<1x1x4x4x8xf32>
  %c = conv.concat %x, %a {convir.in_place, axis = 1 : i64} : tensor<1x1x4x4x8xf32>, tensor<1x1x4x4x8xf32> -> tensor<1x2x4x4x8xf32>
  %out = conv.activation %c {kind = "relu"} : tensor<1x2x4x4x8xf32> -> tensor<1x2x4x4x8xf32>
  func.return %out : tensor<1x2x4x4x8xf32>
}
