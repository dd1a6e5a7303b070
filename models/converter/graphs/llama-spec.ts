/**
 * The LLaMA sizes the language graphs are built to, where they come from
 * (config.json) and what the weights themselves say about them, so that a
 * config that does not match its checkpoint fails before anything is built.
 */
import { UserInputError } from '../../../src/errors.js';
import { type WeightSource, countIndexedKeys, describeShape } from '../weights.js';

export interface LlamaSpec {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
  rmsNormEps: number;
  /** Rotary base: config `rope_theta`, 10000 when absent. */
  ropeTheta: number;
  /** config `rope_scaling`: only null/absent is supported (LISA uses none). */
  ropeScaling?: unknown;
}

/** The config.json keys a LLaMA spec is read from (transformers names). */
export interface LlamaConfigKeys {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads?: number;
  rms_norm_eps: number;
  vocab_size: number;
  rope_theta?: number;
  rope_scaling?: unknown;
}

export function llamaSpecFromConfig(config: LlamaConfigKeys): LlamaSpec {
  return {
    hidden: config.hidden_size,
    layers: config.num_hidden_layers,
    heads: config.num_attention_heads,
    kvHeads: config.num_key_value_heads ?? config.num_attention_heads,
    headDim: config.hidden_size / config.num_attention_heads,
    intermediate: config.intermediate_size,
    vocab: config.vocab_size,
    rmsNormEps: config.rms_norm_eps,
    ropeTheta: config.rope_theta ?? 10000,
    ropeScaling: config.rope_scaling,
  };
}

function invalid(message: string): never {
  throw new UserInputError(message, 'checkpoint_invalid');
}

/** Refuses sizes the decoder cannot be built to, with the config key to blame. */
export function checkLlamaSpec(spec: LlamaSpec): void {
  if (spec.ropeScaling !== undefined && spec.ropeScaling !== null) {
    invalid(`config.json: rope_scaling ${JSON.stringify(spec.ropeScaling)} is not supported (LISA's LLaMA uses none).`);
  }
  for (const key of ['hidden', 'layers', 'heads', 'kvHeads', 'headDim', 'intermediate', 'vocab'] as const) {
    if (!Number.isInteger(spec[key]) || spec[key] <= 0) invalid(`LLaMA ${key} must be a positive integer, got ${spec[key]} (from config.json).`);
  }
  if (spec.headDim % 2 !== 0) invalid(`LLaMA head dim ${spec.headDim} is odd: rotary embeddings need an even head dim.`);
  if (spec.heads % spec.kvHeads !== 0) invalid(`config.json: num_attention_heads ${spec.heads} is not a multiple of num_key_value_heads ${spec.kvHeads}.`);
  if (!(spec.rmsNormEps > 0) || !(spec.ropeTheta > 0)) invalid(`config.json: rms_norm_eps ${spec.rmsNormEps} and rope_theta ${spec.ropeTheta} must be positive.`);
}

/** What the LLaMA weights alone say about the sizes (heads need config.json, or the rotary buffer). */
export interface LlamaShapes {
  hidden: number;
  vocab: number;
  layers: number;
  intermediate: number;
  /** Rows of q_proj: heads * head dim. */
  queryWidth: number;
  /** Rows of k_proj: KV heads * head dim. */
  kvWidth: number;
  /** 2 * len(rotary_emb.inv_freq), when the checkpoint keeps that buffer (LISA's do). */
  headDim?: number;
}

function shape(source: WeightSource, name: string): number[] {
  const info = source.info(name);
  if (!info) invalid(`The checkpoint has no tensor "${name}", which every LLaMA has.`);
  return info.shape;
}

function dim(source: WeightSource, name: string, rank: number, index: number): number {
  const s = shape(source, name);
  if (s.length !== rank) invalid(`The checkpoint's "${name}" is ${describeShape(s)}: expected ${rank} dimensions.`);
  return s[index]!;
}

export function llamaShapesOf(source: WeightSource): LlamaShapes {
  const layers = countIndexedKeys(source.names, 'model.layers.');
  if (layers <= 0) invalid(`The checkpoint's LLaMA layers (model.layers.N.*) are ${layers < 0 ? 'not numbered 0..N-1' : 'missing'}.`);
  const freq = source.info('model.layers.0.self_attn.rotary_emb.inv_freq');
  return {
    hidden: dim(source, 'model.embed_tokens.weight', 2, 1),
    vocab: dim(source, 'model.embed_tokens.weight', 2, 0),
    layers,
    intermediate: dim(source, 'model.layers.0.mlp.gate_proj.weight', 2, 0),
    queryWidth: dim(source, 'model.layers.0.self_attn.q_proj.weight', 2, 0),
    kvWidth: dim(source, 'model.layers.0.self_attn.k_proj.weight', 2, 0),
    headDim: freq && freq.shape.length === 1 ? 2 * freq.shape[0]! : undefined,
  };
}

/** Fails with one line when config.json's sizes and the weights' disagree. */
export function checkLlamaSpecAgainstWeights(spec: LlamaSpec, shapes: LlamaShapes): void {
  const pairs: [string, number, number][] = [
    ['hidden_size', spec.hidden, shapes.hidden],
    ['vocab_size', spec.vocab, shapes.vocab],
    ['num_hidden_layers', spec.layers, shapes.layers],
    ['intermediate_size', spec.intermediate, shapes.intermediate],
    ['num_attention_heads x head dim', spec.heads * spec.headDim, shapes.queryWidth],
    ['num_key_value_heads x head dim', spec.kvHeads * spec.headDim, shapes.kvWidth],
  ];
  if (shapes.headDim !== undefined) pairs.push(['head dim (hidden_size / num_attention_heads)', spec.headDim, shapes.headDim]);
  for (const [key, fromConfig, fromWeights] of pairs) {
    if (fromConfig !== fromWeights) invalid(`config.json gives ${key} = ${fromConfig}, but the LLaMA weights give ${fromWeights}.`);
  }
}
