// RUN: convir-opt %s -p 'conv-tile{target=x86-avx2}' | filecheck %s
// RUN: convir-opt %s -p 'conv-tile{target=x86-avx512}' | filecheck %s --check-prefix=AVX512
// RUN: convir-opt %s -p 'conv-tile{target=x86-avx2 tiles="conv_0:ow_block=2,oc_blocks=1;/stage/pinned:ow_block=4"}' | filecheck %s --check-prefix=PIN
// RUN: convir-opt %s -p 'conv-select-algorithm{algorithm="conv_0=winograd"},conv-tile{target=x86-avx2 tiles="conv_0:m=6"}' | filecheck %s --check-prefix=WINO
// RUN: not convir-opt %s -p 'conv-tile{tiles="conv_0:unroll=2"}' 2>&1 | filecheck %s --check-prefix=KNOB
// RUN: not convir-opt %s -p 'conv-tile{tiles="conv_4:ow_block=2"}' 2>&1 | filecheck %s --check-prefix=NOALGO
// RUN: not convir-opt %s -p 'conv-tile{tiles="nosuch:ow_block=2"}' 2>&1 | filecheck %s --check-prefix=NOCONV
// RUN: not convir-opt %s -p 'conv-tile{tiles="conv_0:ow_block=0"}' 2>&1 | filecheck %s --check-prefix=MALFORMED
// RUN: not convir-opt %s -p 'conv-tile{target=sparc}' 2>&1 | filecheck %s --check-prefix=TARGET
// RUN: convir-opt %s -p 'conv-select-algorithm{algorithm="conv_0=winograd"},conv-tile{target=x86-avx2 winograd-tolerance=1e-6}' | filecheck %s --check-prefix=WINOTOL
// RUN: not convir-opt %s -p 'conv-tile{winograd-tolerance=-1}' 2>&1 | filecheck %s --check-prefix=BADTOL

// Convs whose algorithm is chosen: direct and depthwise on NCHWc (block 8), one direct with a
// pinned knob, a direct conv on NCHW (its vector width is the target's), and one conv without an
// algorithm, which the pass leaves alone. Heuristic values are the algorithms' business: only
// the knobs the pass itself decides are checked exactly.

func.func @blocked(%x: tensor<1x2x12x12x8xf32>) -> tensor<1x2x12x12x8xf32> {
  %w3 = conv.constant dense<0.5> : tensor<16x16x3x3xf32>
  %w1 = conv.constant dense<0.25> : tensor<16x16x1x1xf32>
  %wd = conv.constant dense<0.125> : tensor<16x1x3x3xf32>
  %a = conv.conv2d %x, %w3 {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64, algorithm = "direct"} : tensor<1x2x12x12x8xf32>, tensor<16x16x3x3xf32> -> tensor<1x2x12x12x8xf32>
  %b = conv.conv2d %a, %w1 {onnx.name = "/stage/pinned", strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64, algorithm = "direct", schedule = {ow_block = 3 : i64}} : tensor<1x2x12x12x8xf32>, tensor<16x16x1x1xf32> -> tensor<1x2x12x12x8xf32>
  %c = conv.conv2d %b, %wd {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 16 : i64, algorithm = "depthwise"} : tensor<1x2x12x12x8xf32>, tensor<16x1x3x3xf32> -> tensor<1x2x12x12x8xf32>
  func.return %c : tensor<1x2x12x12x8xf32>
}

func.func @plain(%y: tensor<1x16x10x10xf32>) -> (tensor<1x8x10x10xf32>, tensor<1x8x10x10xf32>) {
  %w = conv.constant dense<0.5> : tensor<8x16x3x3xf32>
  %d = conv.conv2d %y, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64, algorithm = "direct"} : tensor<1x16x10x10xf32>, tensor<8x16x3x3xf32> -> tensor<1x8x10x10xf32>
  %e = conv.conv2d %y, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x16x10x10xf32>, tensor<8x16x3x3xf32> -> tensor<1x8x10x10xf32>
  func.return %d, %e : tensor<1x8x10x10xf32>, tensor<1x8x10x10xf32>
}

// Every knob filled; the pinned ow_block kept while the others are filled; on NCHWc the direct
// vector width is the block, on NCHW the target's.
// CHECK-LABEL: func.func @blocked
// CHECK:       conv.conv2d %x, %w3 {convir.name = "conv_0", {{.*}}, algorithm = "direct", schedule = {vector_width = 8 : i64, ow_block = {{[0-9]+}} : i64, oc_blocks = {{[0-9]+}} : i64}} :
// CHECK:       conv.conv2d %a, %w1 {convir.name = "conv_1", onnx.name = "/stage/pinned", {{.*}}, algorithm = "direct", schedule = {vector_width = 8 : i64, ow_block = 3 : i64, oc_blocks = {{[0-9]+}} : i64}} :
// CHECK:       conv.conv2d %b, %wd {convir.name = "conv_2", {{.*}}, algorithm = "depthwise", schedule = {ow_block = {{[0-9]+}} : i64}} :
// CHECK-LABEL: func.func @plain
// CHECK:       conv.conv2d %y, %w {convir.name = "conv_3", {{.*}}, algorithm = "direct", schedule = {vector_width = 8 : i64, ow_block = {{[0-9]+}} : i64, oc_blocks = {{[0-9]+}} : i64}} :
// CHECK:       conv.conv2d %y, %w {convir.name = "conv_4", {{.*}}, group = 1 : i64} :

// AVX512-LABEL: func.func @blocked
// AVX512:       conv.conv2d %x, %w3 {{.*}}schedule = {vector_width = 8 : i64,
// AVX512-LABEL: func.func @plain
// AVX512:       conv.conv2d %y, %w {{.*}}schedule = {vector_width = 16 : i64,

// Knobs given in the option win over the heuristic and over knobs pinned in the IR.
// PIN: conv.conv2d %x, %w3 {{.*}}schedule = {vector_width = 8 : i64, ow_block = 2 : i64, oc_blocks = 1 : i64}} :
// PIN: conv.conv2d %a, %w1 {{.*}}schedule = {vector_width = 8 : i64, ow_block = 4 : i64, oc_blocks = {{[0-9]+}} : i64}} :

// A conv switched to winograd gets its knobs (m as pinned, the others from its heuristic).
// WINO: conv.conv2d %x, %w3 {{.*}}algorithm = "winograd", schedule = {m = 6 : i64, mr = {{[0-9]+}} : i64, nr = {{[0-9]+}} : i64, block_tiles = {{[0-9]+}} : i64, slots = {{[0-9]+}} : i64, panel_groups = {{[0-9]+}} : i64}} :

// With a tolerance of 1e-6 only F(2,3) is accurate enough for the heuristic.
// WINOTOL: conv.conv2d %x, %w3 {{.*}}algorithm = "winograd", schedule = {m = 2 : i64,

// KNOB: convir-opt: error: conv-tile: tiles 'conv_0:unroll=2': conv_0 ('conv.conv2d') runs direct, which has no knob 'unroll'; its knobs: vector_width, ow_block, oc_blocks
// NOALGO: convir-opt: error: conv-tile: conv_4 ('conv.conv2d') has no algorithm; run conv-select-algorithm first
// NOCONV: convir-opt: error: conv-tile: tiles 'nosuch:ow_block=2': no conv is named 'nosuch'; expected conv_0, conv_1, conv_2, conv_3, conv_4 or a conv's onnx.name
// MALFORMED: convir-opt: error: conv-tile: option tiles: 'conv_0:ow_block=0': 'ow_block=0' is not KNOB=INTEGER >= 1 (e.g. ow_block=4)
// TARGET: convir-opt: error: conv-tile: option target: unknown target preset 'sparc'
// BADTOL: convir-opt: error: conv-tile: option winograd-tolerance: expected a finite number >= 0 (a relative error, e.g. 1e-4; 0 selects winograd nowhere), got '-1'
