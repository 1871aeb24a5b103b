// RUN: convir-opt %s -p conv-concat-in-place | filecheck %s
// RUN: convir-opt %s -p conv-concat-in-place,conv-plan-memory | filecheck %s --check-prefix=PLAN

// DenseNet's chain: every concat repeats the previous one's inputs and appends one. Both go in
// place and share the longest one's 3-block buffer: %x0, %y1 and %y2 sit at bytes 0, 512 and
// 1024 of it, both concats start at 0, and %z1 (alive meanwhile) goes after it.

// CHECK-LABEL: func.func @chain
// CHECK: conv.concat %x0, %y1 {convir.in_place,
// CHECK: conv.concat %x0, %y1, %y2 {convir.in_place,
// PLAN-LABEL: func.func @chain{{.*}}convir.arena_bytes = 2560
// PLAN: %x0 = conv.activation %x {convir.arena_offset = 0 : i64
// PLAN: %y1 = conv.activation %x0 {convir.arena_offset = 512 : i64
// PLAN: %c1 = conv.concat %x0, %y1 {convir.in_place, convir.arena_offset = 0 : i64
// PLAN: %z1 = conv.activation %c1 {convir.arena_offset = 1536 : i64
// PLAN: %y2 = conv.activation %y1 {convir.arena_offset = 1024 : i64
// PLAN: %c2 = conv.concat %x0, %y1, %y2 {convir.in_place, convir.arena_offset = 0 : i64
// PLAN: conv.activation %c2 {convir.output = 0 : i64
func.func @chain(%x: tensor<1x1x4x4x8xf32>) -> tensor<1x3x4x4x8xf32> {
  %x0 = conv.activation %x {kind = "relu"} : tensor<1x1x4x4x8xf32> -> tensor<1x1x4x4x8xf32>
  %y1 = conv.activation %x0 {kind = "relu"} : tensor<1x1x4x4x8xf32> -> tensor<1x1x4x4x8xf32>
  %c1 = conv.concat %x0, %y1 {axis = 1 : i64} : tensor<1x1x4x4x8xf32>, tensor<1x1x4x4x8xf32> -> tensor<1x2x4x4x8xf32>
  %z1 = conv.activation %c1 {kind = "relu"} : tensor<1x2x4x4x8xf32> -> tensor<1x2x4x4x8xf32>
  %y2 = conv.activation %y1 {kind = "relu"} : tensor<1x1x4x4x8xf32> -> tensor<1x1x4x4x8xf32>
  %c2 = conv.concat %x0, %y1, %y2 {axis = 1 : i64} : tensor<1x1x4x4x8xf32>, tensor<1x1x4x4x8xf32>, tensor<1x1x4x4x8xf32> -> tensor<1x3x4x4x8xf32>
  %out = conv.activation %c2 {kind = "relu"} : tensor<1x3x4x4x8xf32> -> tensor<1x3x4x4x8xf32>
  func.return %out : tensor<1x3x4x4x8xf32>
}

// A concat that stayed NCHW (5 channels: not whole blocks) at batch 1: each input is still one
// contiguous run of the result.

// CHECK-LABEL: func.func @nchw_batch_one
// CHECK: conv.concat %a, %b {convir.in_place,
func.func @nchw_batch_one(%x: tensor<1x3x4x4xf32>, %y: tensor<1x5x4x4xf32>) -> tensor<1x8x4x4xf32> {
  %a = conv.activation %x {kind = "relu"} : tensor<1x3x4x4xf32> -> tensor<1x3x4x4xf32>
  %b = conv.activation %y {kind = "relu"} : tensor<1x5x4x4xf32> -> tensor<1x5x4x4xf32>
  %c = conv.concat %a, %b {axis = 1 : i64} : tensor<1x3x4x4xf32>, tensor<1x5x4x4xf32> -> tensor<1x8x4x4xf32>
  %out = conv.activation %c {kind = "relu"} : tensor<1x8x4x4xf32> -> tensor<1x8x4x4xf32>
  func.return %out : tensor<1x8x4x4xf32>
}

// Every concat below keeps its copy.

// Batch 2: an input's slice is two runs, one per image.
// CHECK-LABEL: func.func @batch_two
// CHECK-NOT: convir.in_place
func.func @batch_two(%x: tensor<2x1x4x4x8xf32>) -> tensor<2x2x4x4x8xf32> {
  %a = conv.activation %x {kind = "relu"} : tensor<2x1x4x4x8xf32> -> tensor<2x1x4x4x8xf32>
  %b = conv.activation %a {kind = "relu"} : tensor<2x1x4x4x8xf32> -> tensor<2x1x4x4x8xf32>
  %c = conv.concat %a, %b {axis = 1 : i64} : tensor<2x1x4x4x8xf32>, tensor<2x1x4x4x8xf32> -> tensor<2x2x4x4x8xf32>
  %out = conv.activation %c {kind = "relu"} : tensor<2x2x4x4x8xf32> -> tensor<2x2x4x4x8xf32>
  func.return %out : tensor<2x2x4x4x8xf32>
}

// An input that is a function argument lives in the caller's buffer.
// CHECK-LABEL: func.func @argument_input
// CHECK-NOT: convir.in_place
func.func @argument_input(%x: tensor<1x1x4x4x8xf32>) -> tensor<1x2x4x4x8xf32> {
  %a = conv.activation %x {kind = "relu"} : tensor<1x1x4x4x8xf32> -> tensor<1x1x4x4x8xf32>
  %c = conv.concat %x, %a {axis = 1 : i64} : tensor<1x1x4x4x8xf32>, tensor<1x1x4x4x8xf32> -> tensor<1x2x4x4x8xf32>
  %out = conv.activation %c {kind = "relu"} : tensor<1x2x4x4x8xf32> -> tensor<1x2x4x4x8xf32>
  func.return %out : tensor<1x2x4x4x8xf32>
}

// A returned concat is written to the caller's output buffer: it copies. A concat that shares
// an input with it still goes in place (the copy reads %b from its slice of %e).
// CHECK-LABEL: func.func @returned_concat
// CHECK: %c = conv.concat %a, %b {axis = 1 : i64}
// CHECK: %e = conv.concat %d, %b {convir.in_place,
func.func @returned_concat(%x: tensor<1x1x4x4x8xf32>) -> (tensor<1x1x4x4x8xf32>, tensor<1x2x4x4x8xf32>, tensor<1x2x4x4x8xf32>) {
  %a = conv.activation %x {kind = "relu"} : tensor<1x1x4x4x8xf32> -> tensor<1x1x4x4x8xf32>
  %b = conv.activation %a {kind = "relu"} : tensor<1x1x4x4x8xf32> -> tensor<1x1x4x4x8xf32>
  %c = conv.concat %a, %b {axis = 1 : i64} : tensor<1x1x4x4x8xf32>, tensor<1x1x4x4x8xf32> -> tensor<1x2x4x4x8xf32>
  %d = conv.activation %a {kind = "relu"} : tensor<1x1x4x4x8xf32> -> tensor<1x1x4x4x8xf32>
  %e = conv.concat %d, %b {axis = 1 : i64} : tensor<1x1x4x4x8xf32>, tensor<1x1x4x4x8xf32> -> tensor<1x2x4x4x8xf32>
  %f = conv.activation %e {kind = "relu"} : tensor<1x2x4x4x8xf32> -> tensor<1x2x4x4x8xf32>
  func.return %a, %c, %f : tensor<1x1x4x4x8xf32>, tensor<1x2x4x4x8xf32>, tensor<1x2x4x4x8xf32>
}

// A returned input is written to the caller's output buffer, not into the concat.
// CHECK-LABEL: func.func @returned_input
// CHECK-NOT: convir.in_place
func.func @returned_input(%x: tensor<1x1x4x4x8xf32>) -> (tensor<1x1x4x4x8xf32>, tensor<1x2x4x4x8xf32>) {
  %a = conv.activation %x {kind = "relu"} : tensor<1x1x4x4x8xf32> -> tensor<1x1x4x4x8xf32>
  %b = conv.activation %a {kind = "relu"} : tensor<1x1x4x4x8xf32> -> tensor<1x1x4x4x8xf32>
  %c = conv.concat %a, %b {axis = 1 : i64} : tensor<1x1x4x4x8xf32>, tensor<1x1x4x4x8xf32> -> tensor<1x2x4x4x8xf32>
  %out = conv.activation %c {kind = "relu"} : tensor<1x2x4x4x8xf32> -> tensor<1x2x4x4x8xf32>
  func.return %b, %out : tensor<1x1x4x4x8xf32>, tensor<1x2x4x4x8xf32>
}

// Shared inputs in another order, or twice in one concat: no single place fits every use.
// CHECK-LABEL: func.func @not_a_prefix
// CHECK-NOT: convir.in_place
func.func @not_a_prefix(%x: tensor<1x1x4x4x8xf32>) -> (tensor<1x2x4x4x8xf32>, tensor<1x2x4x4x8xf32>, tensor<1x2x4x4x8xf32>) {
  %a = conv.activation %x {kind = "relu"} : tensor<1x1x4x4x8xf32> -> tensor<1x1x4x4x8xf32>
  %b = conv.activation %a {kind = "relu"} : tensor<1x1x4x4x8xf32> -> tensor<1x1x4x4x8xf32>
  %c1 = conv.concat %a, %b {axis = 1 : i64} : tensor<1x1x4x4x8xf32>, tensor<1x1x4x4x8xf32> -> tensor<1x2x4x4x8xf32>
  %c2 = conv.concat %b, %a {axis = 1 : i64} : tensor<1x1x4x4x8xf32>, tensor<1x1x4x4x8xf32> -> tensor<1x2x4x4x8xf32>
  %d = conv.activation %x {kind = "tanh"} : tensor<1x1x4x4x8xf32> -> tensor<1x1x4x4x8xf32>
  %c3 = conv.concat %d, %d {axis = 1 : i64} : tensor<1x1x4x4x8xf32>, tensor<1x1x4x4x8xf32> -> tensor<1x2x4x4x8xf32>
  %o1 = conv.activation %c1 {kind = "relu"} : tensor<1x2x4x4x8xf32> -> tensor<1x2x4x4x8xf32>
  %o2 = conv.activation %c2 {kind = "relu"} : tensor<1x2x4x4x8xf32> -> tensor<1x2x4x4x8xf32>
  %o3 = conv.activation %c3 {kind = "relu"} : tensor<1x2x4x4x8xf32> -> tensor<1x2x4x4x8xf32>
  func.return %o1, %o2, %o3 : tensor<1x2x4x4x8xf32>, tensor<1x2x4x4x8xf32>, tensor<1x2x4x4x8xf32>
}

// %c3 links the groups of %c1 and %c2; %c2's inputs are not a prefix of %c3's, so none of the
// three can keep one place per input.
// CHECK-LABEL: func.func @groups_linked_later
// CHECK-NOT: convir.in_place
func.func @groups_linked_later(%x: tensor<1x1x4x4x8xf32>) -> (tensor<1x2x4x4x8xf32>, tensor<1x2x4x4x8xf32>, tensor<1x3x4x4x8xf32>) {
  %a = conv.activation %x {kind = "relu"} : tensor<1x1x4x4x8xf32> -> tensor<1x1x4x4x8xf32>
  %b = conv.activation %x {kind = "tanh"} : tensor<1x1x4x4x8xf32> -> tensor<1x1x4x4x8xf32>
  %d = conv.activation %a {kind = "relu"} : tensor<1x1x4x4x8xf32> -> tensor<1x1x4x4x8xf32>
  %e = conv.activation %b {kind = "relu"} : tensor<1x1x4x4x8xf32> -> tensor<1x1x4x4x8xf32>
  %c1 = conv.concat %a, %b {axis = 1 : i64} : tensor<1x1x4x4x8xf32>, tensor<1x1x4x4x8xf32> -> tensor<1x2x4x4x8xf32>
  %c2 = conv.concat %d, %e {axis = 1 : i64} : tensor<1x1x4x4x8xf32>, tensor<1x1x4x4x8xf32> -> tensor<1x2x4x4x8xf32>
  %c3 = conv.concat %a, %b, %d {axis = 1 : i64} : tensor<1x1x4x4x8xf32>, tensor<1x1x4x4x8xf32>, tensor<1x1x4x4x8xf32> -> tensor<1x3x4x4x8xf32>
  %o1 = conv.activation %c1 {kind = "relu"} : tensor<1x2x4x4x8xf32> -> tensor<1x2x4x4x8xf32>
  %o2 = conv.activation %c2 {kind = "relu"} : tensor<1x2x4x4x8xf32> -> tensor<1x2x4x4x8xf32>
  %o3 = conv.activation %c3 {kind = "relu"} : tensor<1x3x4x4x8xf32> -> tensor<1x3x4x4x8xf32>
  func.return %o1, %o2, %o3 : tensor<1x2x4x4x8xf32>, tensor<1x2x4x4x8xf32>, tensor<1x3x4x4x8xf32>
}
