/**
 * The checks that make a conversion fail before any graph is built when the
 * weights are not LISA's or do not fit together: a plain LLaMA, a vision tower
 * other than the one LISA was trained with. (Each graph's own sizes are
 * checked against config.json by its spec module in graphs/.)
 */
import { UserInputError } from '../../src/errors.js';
import type { LisaConfig } from './checkpoint-config.js';
import { type WeightSource, describeShape } from './weights.js';

function invalid(message: string): never {
  throw new UserInputError(message, 'checkpoint_invalid');
}

/** A LISA checkpoint carries SAM and text_hidden_fcs beside the LLaMA. */
export function checkIsLisa(dir: string, w: WeightSource): void {
  const has = (prefix: string) => w.names.some((n) => n.startsWith(prefix));
  if (!has('model.visual_model.') || !has('model.text_hidden_fcs.') || !has('model.mm_projector.')) {
    invalid(
      `${dir} is not a LISA checkpoint: it has no SAM (model.visual_model.*), text_hidden_fcs or mm_projector weights${has('model.layers.') ? ' (it looks like a plain LLaMA)' : ''}.`,
    );
  }
}

function expectShape(w: WeightSource, dir: string, name: string, expected: number[], why: string): void {
  const info = w.info(name);
  if (!info) invalid(`${dir} has no tensor "${name}", which every LISA checkpoint has.`);
  if (info.shape.length !== expected.length || info.shape.some((d, i) => d !== expected[i])) {
    invalid(`${dir}: "${name}" is ${describeShape(info.shape)} but ${why} gives ${describeShape(expected)}.`);
  }
}

/** mm_projector and text_hidden_fcs against config.json. */
export function checkLisaHeads(dir: string, lisa: LisaConfig, w: WeightSource): void {
  const H = lisa.hidden_size;
  expectShape(w, dir, 'model.mm_projector.weight', [H, lisa.mm_hidden_size], 'config.json (hidden_size, mm_hidden_size)');
  expectShape(w, dir, 'model.text_hidden_fcs.0.0.weight', [H, H], 'config.json (hidden_size)');
  expectShape(w, dir, 'model.text_hidden_fcs.0.2.weight', [lisa.out_dim, H], 'config.json (out_dim, hidden_size)');
}

/** The CLIP tower must be as wide as the mm_projector LISA trained on it. */
export function checkVisionTowerWidth(clipDir: string, towerHidden: number, lisa: LisaConfig): void {
  if (towerHidden !== lisa.mm_hidden_size) {
    invalid(
      `The vision tower ${clipDir} has hidden size ${towerHidden}, but the LISA checkpoint's mm_hidden_size is ${lisa.mm_hidden_size}: LISA was trained on another tower (openai/clip-vit-large-patch14).`,
    );
  }
}
