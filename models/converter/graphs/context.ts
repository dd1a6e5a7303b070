/**
 * What every graph builder gets: the checkpoint to read, the pack dtype and
 * the graph to fill. Builders read each tensor right before adding it and
 * drop it afterwards, so a 7B decoder is built holding one tensor at a time.
 */
import type { PackDtype } from '../../../src/engine/floats.js';
import type { WeightGraph } from '../weight-graph.js';
import { ITEM_SIZE } from '../checkpoint/dtypes.js';
import type { Quantization } from '../quantize.js';
import type { WeightSource } from '../weights.js';


export interface BuildContext {
  /** The LISA checkpoint (LLaMA, mm_projector, text_hidden_fcs, SAM). */
  source: WeightSource;
  dtype: PackDtype;
  graph: WeightGraph;
  /**
   * Every Linear as MatMulNBits (models/converter/quantize.ts); absent or null:
   * float MatMul. Only the decoder graph is given one.
   */
  quantization?: Quantization | null;
  /** Called after each checkpoint tensor is consumed, with its size in the checkpoint (progress). */
  onTensor?: (name: string, bytes: number) => void;
}

/** The vision encoder reads two checkpoints: CLIP's tower and LISA's mm_projector. */
export interface VisionBuildContext extends BuildContext {
  /** The CLIP checkpoint (openai/clip-vit-large-patch14: `vision_model.*`). */
  clipSource: WeightSource;
}

/** A tensor's size as stored in its checkpoint (what progress counts). */
export function sourceBytes(source: WeightSource, name: string): number {
  const info = source.info(name);
  return info ? info.shape.reduce((a, b) => a * b, 1) * ITEM_SIZE[info.dtype] : 0;
}

/** A checkpoint tensor a graph will read: for size estimates before building. */
export interface TensorRef {
  source: WeightSource;
  name: string;
}
