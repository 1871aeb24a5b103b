// RUN: convir-opt %s -p 'conv-select-algorithm{target=x86-avx2},conv-tile{target=x86-avx2},conv-plan-memory' | filecheck %s

// Two chained convs, scheduled for AVX2: the planner puts the intermediate in the arena, lets the
// second conv write the graph output directly, and gives the conv that needs a workspace
// (im2col's panels: 2 slots, one per block of 32 of the 64 pixels, x 32 pixels x 9 taps x 4 lanes
// x 4 bytes = 9216) one whose lifetime is its own op, after the 4096-byte intermediate.

func.func @main(%x: tensor<1x1x8x8x8xf32>) -> tensor<1x2x8x8x8xf32> {
  %w1 = conv.constant dense<0.5> : tensor<16x3x3x3xf32>
  %w2 = conv.constant dense<0.25> : tensor<16x16x1x1xf32>
  %a = conv.conv2d %x, %w1 {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64, algorithm = "im2col"} : tensor<1x1x8x8x8xf32>, tensor<16x3x3x3xf32> -> tensor<1x2x8x8x8xf32>
  %b = conv.conv2d %a, %w2 {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64, algorithm = "direct", schedule = {vector_width = 8 : i64, ow_block = 4 : i64, oc_blocks = 1 : i64}} : tensor<1x2x8x8x8xf32>, tensor<16x16x1x1xf32> -> tensor<1x2x8x8x8xf32>
  func.return %b : tensor<1x2x8x8x8xf32>
}

// CHECK: func.func @main{{.*}}attributes {convir.arena_bytes = 13312 : i64}
// CHECK: conv.conv2d %x, %{{.*}} {convir.name = "conv_0", convir.choice = "pinned", convir.arena_offset = 0 : i64, convir.workspace_offset = 4096 : i64
// CHECK: conv.conv2d %a, %{{.*}} {convir.name = "conv_1", convir.choice = "pinned", convir.output = 0 : i64
