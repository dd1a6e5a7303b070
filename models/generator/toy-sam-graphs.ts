/**
 * The toy pack's SAM stand-ins (always float32, as the contract says).
 *
 * sam_image_encoder: per-pixel palette membership at 1024x1024, averaged over
 * 4x4 cells -> [1,6,256,256] membership fractions, padded to 16 channels and
 * packed by SpaceToDepth(4) into the contract's [1,256,64,64].
 *
 * sam_mask_decoder: DepthToSpace(4, DCR) unpacks exactly what SpaceToDepth
 * packed; each prompt's dominant colour (argmax of dims 0..5, if positive)
 * selects a fraction map; logit = MASK_SCALE * (fraction - 0.5).
 */
import { type GraphSpec, SAM_EMBEDDINGS_SHAPE, SAM_LOW_RES } from '../../src/engine/contract.js';
import { GraphBuilder } from '../../src/engine/onnx-builder.js';
import { contractInputs, contractOutputs } from './contract-io.js';
import { SAM_NORMALISATION } from './pack-files.js';
import { TOY_MAX_COLOUR_DISTANCE, TOY_PALETTE } from './toy-palette.js';

export const TOY_SAM_SIZE = 1024;
/** Logit per unit of membership fraction: ±10 at a cell fully out / in. */
export const TOY_MASK_SCALE = 20;

const GRID = SAM_LOW_RES; // the low-res mask grid, 256
const CELL = TOY_SAM_SIZE / GRID; // 4
const EMBED_CHANNELS = SAM_EMBEDDINGS_SHAPE[1]!; // 256
const PACKED = 4; // SpaceToDepth block: 256 -> 64, 16 channels x 16 = 256
const COLOURS = TOY_PALETTE.length;

export function samImageEncoderGraph(spec: GraphSpec): Uint8Array {
  const g = new GraphBuilder('toy_sam_image_encoder');
  const [pixels] = contractInputs(g, spec);
  // Back to 0..255 RGB. The engine's zero padding (after normalising) becomes
  // the SAM mean colour, which is further than 80 from every palette colour.
  const rgb = g.op('Add', [g.op('Mul', [pixels, g.float32(SAM_NORMALISATION.std, [1, 3, 1, 1])]), g.float32(SAM_NORMALISATION.mean, [1, 3, 1, 1])]);
  // Squared distance to each palette colour, one colour at a time to keep
  // intermediates at [1,3,1024,1024] rather than [1,6,3,1024,1024].
  const distances = TOY_PALETTE.map((colour) => {
    const diff = g.op('Sub', [rgb, g.float32([...colour.rgb], [1, 3, 1, 1])]);
    return g.op('ReduceSum', [g.op('Mul', [diff, diff]), g.int64([1])], { keepdims: 1 }); // [1,1,H,W]
  });
  const d2 = g.op('Concat', distances, { axis: 1 }); // [1,6,H,W]
  // Nearest colour (ArgMin keeps the first on ties, like toyColourIndex) and within range.
  const nearest = g.op('ArgMin', [d2], { axis: 1, keepdims: 1 }); // [1,1,H,W]
  const isNearest = g.op('Equal', [nearest, g.int64([0, 1, 2, 3, 4, 5], [1, COLOURS, 1, 1])]);
  const inRange = g.op('LessOrEqual', [d2, g.float32([TOY_MAX_COLOUR_DISTANCE ** 2], [])]);
  const member = g.cast(g.op('And', [isNearest, inRange]), 'bool', 'float32'); // [1,6,H,W]
  const fraction = g.op('AveragePool', [member], { kernel_shape: [CELL, CELL], strides: [CELL, CELL] }); // [1,6,256,256]
  const channels = EMBED_CHANNELS / (PACKED * PACKED); // 16
  const padded = g.op('Pad', [fraction, g.int64([0, 0, 0, 0, 0, channels - COLOURS, 0, 0])]); // [1,16,256,256]
  const packed = g.op('SpaceToDepth', [padded], { blocksize: PACKED }); // [1,256,64,64]
  contractOutputs(g, spec, [packed]);
  return g.toBytes('lisa-bot toy pack: SAM image encoder stand-in (palette membership, not SAM)');
}

export function samMaskDecoderGraph(spec: GraphSpec): Uint8Array {
  const g = new GraphBuilder('toy_sam_mask_decoder');
  const [embeddings, prompts] = contractInputs(g, spec) as [string, string];
  const unpacked = g.op('DepthToSpace', [embeddings], { blocksize: PACKED, mode: 'DCR' }); // [1,16,256,256]
  const fractions = g.reshape(g.slice(unpacked, 1, 0, COLOURS), [COLOURS, GRID * GRID]); // [6,65536]

  // One-hot of each prompt's dominant colour; all zero when no colour is positive.
  const colours = g.slice(prompts, 1, 0, COLOURS); // [N,6]
  const dominant = g.op('ArgMax', [colours], { axis: 1, keepdims: 1 }); // [N,1]
  const strongest = g.op('ReduceMax', [colours], { axes: [1], keepdims: 1 }); // [N,1]
  const isDominant = g.op('Equal', [dominant, g.int64([0, 1, 2, 3, 4, 5], [1, COLOURS])]); // [N,6]
  const named = g.op('Greater', [strongest, g.float32([0], [])]); // [N,1]
  const choice = g.cast(g.op('And', [isDominant, named]), 'bool', 'float32'); // [N,6]

  const fraction = g.op('MatMul', [choice, fractions]); // [N,65536]
  const logits = g.op('Mul', [g.op('Sub', [fraction, g.float32([0.5], [])]), g.float32([TOY_MASK_SCALE], [])]);
  const masks = g.reshape(logits, [-1, 1, GRID, GRID]);
  // "Predicted IoU": 1 when a colour was asked for, 0 for an empty prompt.
  const iou = g.op('ReduceMax', [choice], { axes: [1], keepdims: 1 });
  contractOutputs(g, spec, [masks, iou]);
  return g.toBytes('lisa-bot toy pack: SAM mask decoder stand-in (colour lookup, not SAM)');
}
