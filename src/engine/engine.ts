import type ort from 'onnxruntime-node';
import { UserInputError } from '../errors.js';
import { SAM_EMBEDDINGS_SHAPE, SAM_LOW_RES } from './contract.js';
import { type ImageEmbeddings, ImageEmbeddingCache, KvCache, type SequenceUnit, TokenEmbeddingCache } from './caches.js';
import { embedTokens, generate } from './generate.js';
import { type KvState, emptyKv, truncateKvState } from './kv.js';
import { ImageEncoders } from './encoders.js';
import { GRAPH_NAMES } from './manifest.js';
import type { EngineOptions } from './options.js';
import { PixelWorkers } from './pixel-workers.js';
import { SamEncoderThread } from './sam-thread.js';
import { type LoadedPack, openPack, releasePack, runGraph } from './pack.js';
import { maskSummariesFromLowRes } from './postprocess.js';
import { buildPrompt, promptPositions } from './prompt.js';
import { type FloatData, allocFloat, copyFloats, floatTensor } from './tensors.js';
import { IMAGE_SLOT } from './tokenizer.js';
import type { ChatEngine, ChatRequest, ChatResult, ChatTurn, EngineStats, GraphRun, Segment, StageTimings } from './types.js';

function emptyTimings(): StageTimings {
  return {
    imageDecode: 0, clipPreprocess: 0, samPreprocess: 0, visionEncoder: 0, prefill: 0, decodeSteps: 0,
    segProjection: 0, samEncoder: 0, maskDecoder: 0, postprocess: 0, total: 0,
  };
}

/** LISA over ONNX Runtime: an image and a conversation in, an answer and masks out. */
export class Engine implements ChatEngine {
  private readonly imageCache: ImageEmbeddingCache;
  private readonly kvCache: KvCache;
  private readonly tokenEmbeddings: TokenEmbeddingCache;
  /** One chat at a time: the graphs already use every core, and the caches are shared. */
  private queue: Promise<unknown> = Promise.resolve();
  /** The running chat's graph runs (one chat at a time, so one list). */
  private graphRuns: GraphRun[] = [];
  private chatStart = 0;
  private readonly encoders: ImageEncoders;

  private constructor(
    readonly pack: LoadedPack,
    private readonly options: EngineOptions,
    private readonly pixels: PixelWorkers,
    private readonly samThread: SamEncoderThread | undefined,
  ) {
    this.imageCache = new ImageEmbeddingCache(options.cache?.imageBytes ?? 256 * 2 ** 20);
    this.kvCache = new KvCache(options.cache?.kvBytes ?? 256 * 2 ** 20, pack.manifest.imageTokens);
    this.encoders = new ImageEncoders(pack, pixels, options.maxImagePixels ?? 40_000_000, samThread);
    this.tokenEmbeddings = new TokenEmbeddingCache((ids) => embedTokens(pack, ids), pack.manifest.decoder.hidden, pack.manifest.dtype);
    pack.onGraphRun = ({ graph, start, end }) => this.graphRuns.push({ graph, startMs: start - this.chatStart, endMs: end - this.chatStart });
  }

  static async open(packDir: string, options: EngineOptions): Promise<Engine> {
    if (!options.samThread) {
      const pack = await openPack(packDir, options);
      options.logger?.info({ pack: pack.manifest.name, provider: pack.provider, dtype: pack.manifest.dtype }, 'model pack loaded');
      return new Engine(pack, options, new PixelWorkers(), undefined);
    }
    const here = GRAPH_NAMES.filter((graph) => graph !== 'samImageEncoder');
    const { images: _images, ...packOptions } = options;
    const [pack, sam] = await Promise.allSettled([openPack(packDir, { ...packOptions, graphs: here }), SamEncoderThread.open(packDir, packOptions)]);
    if (pack.status === 'rejected' || sam.status === 'rejected') {
      if (pack.status === 'fulfilled') await releasePack(pack.value);
      if (sam.status === 'fulfilled') await sam.value.close();
      throw pack.status === 'rejected' ? pack.reason : (sam as PromiseRejectedResult).reason;
    }
    options.logger?.info({ pack: pack.value.manifest.name, provider: pack.value.provider, dtype: pack.value.manifest.dtype }, 'model pack loaded, the SAM encoder on its own thread');
    return new Engine(pack.value, options, new PixelWorkers(), sam.value);
  }

  get manifest() {
    return this.pack.manifest;
  }

  get provider() {
    return this.pack.provider;
  }

  async close(): Promise<void> {
    await this.queue.catch(() => undefined);
    await releasePack(this.pack);
    await this.samThread?.close();
    await this.pixels.close();
  }

  stats(): EngineStats {
    return {
      imageCache: { entries: this.imageCache.size, bytes: this.imageCache.bytes, hits: this.imageCache.hits, misses: this.imageCache.misses },
      kvCache: { entries: this.kvCache.size, bytes: this.kvCache.bytes, hits: this.kvCache.hits, misses: this.kvCache.misses },
    };
  }

  /** Prompt length in decoder positions (image rows included) for these turns. */
  countPromptTokens(turns: readonly ChatTurn[]): number {
    return promptPositions(this.pack.tokenizer, this.manifest, turns);
  }

  chat(request: ChatRequest): Promise<ChatResult> {
    const run = this.queue.then(() => this.run(request));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async run(request: ChatRequest): Promise<ChatResult> {
    const t0 = performance.now();
    this.chatStart = t0;
    this.graphRuns = [];
    const timings = emptyTimings();
    const throwIfAborted = () => {
      if (request.signal?.aborted) throw new UserInputError('The request was cancelled.', 'cancelled');
    };
    throwIfAborted();
    const manifest = this.manifest;
    const { tokenizer } = this.pack;
    const turns = request.turns;
    if (turns.length === 0 || turns[turns.length - 1]!.assistant !== undefined) {
      throw new Error('chat needs turns ending with an unanswered question');
    }
    for (const turn of turns) {
      if (turn.user.trim() === '') throw new UserInputError('The question is empty. Ask something about the image.', 'question_empty');
    }
    const { prompt: ids, answer } = this.encode(turns, request.answer);
    const promptPositions = this.pack.tokenizer.positions(ids);
    const { contextLength } = manifest.decoder;
    if (promptPositions + (answer?.length ?? 0) >= contextLength) {
      throw new UserInputError(
        `The ${turns.length > 1 ? 'conversation' : 'question'} is too long for the model: ${promptPositions} tokens, and it reads at most ${contextLength - 1} before answering. ${turns.length > 1 ? 'Shorten the question or start a new conversation.' : 'Shorten the question.'}`,
        'prompt_too_long',
      );
    }

    const hash = request.imageHash;
    const image = await this.imageEmbeddings(hash, timings);
    const units: SequenceUnit[] = ids.map((id) => (id === IMAGE_SLOT ? (`image:${hash}` as const) : id));

    // Reuse the longest cached prefix; at least one position must be fed to get logits.
    const match = this.kvCache.find(units, promptPositions - 1);
    const reusedUnits = match?.units ?? 0;
    const kv: KvState = match ? await truncateKvState(this.pack, match.kv, match.positions) : emptyKv(this.pack);
    const embeds = await this.embedUnits([...units.slice(reusedUnits), ...(answer ?? [])], image.features.clipFeatures);

    const generation = await generate({
      pack: this.pack,
      embeds: embeds.rows,
      count: embeds.count,
      kv,
      maxNewTokens: manifest.generation.maxNewTokens,
      contextLength,
      segId: tokenizer.segId,
      eosId: tokenizer.eosId,
      throwIfAborted,
      embed: (ids) => this.tokenEmbeddings.rows(ids),
      context: ids,
      draftLength: this.options.draftLength ?? 0,
      given: answer,
    });
    timings.prefill = generation.prefillMs;
    timings.decodeSteps = generation.decodeMs;
    this.kvCache.store([...units, ...generation.fedIds], generation.kv, match?.extends ? match.entryId : undefined);

    const segments = await this.segments(generation.segHidden, image, timings);
    timings.total = performance.now() - t0;
    return {
      text: tokenizer.decode(generation.ids),
      ids: generation.ids,
      segments,
      timings,
      tokens: { prompt: promptPositions, generated: generation.ids.length, reusedFromCache: match?.positions ?? 0, decodeRuns: generation.decodeRuns },
      cache: { imageEmbeddings: image.hit ? 'hit' : 'miss' },
      graphRuns: this.graphRuns,
    };
  }

  /**
   * The prompt's ids and, with a given answer, the answer's. The reference
   * tokenises prompt and answer as one string, and a tokenizer may end the
   * prompt differently once text follows it, so the answer is everything after
   * the ids that string shares with the prompt alone.
   */
  private encode(turns: readonly ChatTurn[], answer: string | undefined): { prompt: number[]; answer?: number[] } {
    const { tokenizer } = this.pack;
    const prompt = tokenizer.encodePrompt(buildPrompt(this.manifest, turns));
    if (answer === undefined) return { prompt };
    const answered = [...turns.slice(0, -1), { ...turns[turns.length - 1]!, assistant: answer }];
    const full = tokenizer.encodePrompt(buildPrompt(this.manifest, answered));
    let shared = 0;
    while (shared < prompt.length && shared < full.length - 1 && prompt[shared] === full[shared]) shared++;
    return { prompt: full.slice(0, shared), answer: full.slice(shared) };
  }

  /** The image's embeddings: cached, or its file through both encoders (encoders.ts), cached once SAM's are done. */
  private async imageEmbeddings(hash: string, timings: StageTimings) {
    const cached = this.imageCache.get(hash);
    if (cached) return { hit: true, features: cached, sam: Promise.resolve(cached.samEmbeddings) };
    const file = await this.options.images.get(hash);
    if (!file) throw new UserInputError("The conversation's image has expired. Send the image again.", 'no_image');
    const { features, sam } = await this.encoders.encode(file, timings);
    const samDone = sam.then((embeddings) => {
      features.samEmbeddings = embeddings;
      this.imageCache.set(hash, features);
      return embeddings;
    });
    // Awaited only after the decode, or never when the turn fails first: a SAM failure
    // meanwhile must stay this turn's error, not an unhandled rejection that kills the thread.
    samDone.catch(() => undefined);
    return { hit: false, features, sam: samDone };
  }

  /** Embedding rows for the units still to be fed: token embeddings, image rows spliced in. */
  private async embedUnits(units: readonly SequenceUnit[], imageRows: FloatData) {
    const { hidden: H } = this.manifest.decoder;
    const textIds = units.filter((u): u is number => typeof u === 'number');
    const tokenRows = await this.tokenEmbeddings.rows(textIds);
    const count = units.reduce<number>((n, u) => n + (typeof u === 'number' ? 1 : this.manifest.imageTokens), 0);
    const rows = allocFloat(this.manifest.dtype, count * H);
    let row = 0;
    let textRow = 0;
    for (const unit of units) {
      if (typeof unit === 'number') {
        copyFloats(rows, row * H, tokenRows, textRow * H, H);
        textRow++;
        row++;
      } else {
        copyFloats(rows, row * H, imageRows, 0, this.manifest.imageTokens * H);
        row += this.manifest.imageTokens;
      }
    }
    return { rows, count };
  }

  private async segments(
    segHidden: readonly FloatData[],
    image: { features: ImageEmbeddings; sam: Promise<Float32Array> },
    timings: StageTimings,
  ): Promise<Segment[]> {
    // The SAM encoder's result is cached even when this answer needs no mask.
    const samEmbeddings = await image.sam;
    if (segHidden.length === 0) return [];
    const manifest = this.manifest;
    const { hidden: H } = manifest.decoder;
    const n = segHidden.length;
    let started = performance.now();
    const hiddenRows = allocFloat(manifest.dtype, n * H);
    segHidden.forEach((h, i) => copyFloats(hiddenRows, i * H, h, 0, H));
    const projected = await runGraph(this.pack, 'segProjection', { seg_hidden: floatTensor(manifest.dtype, hiddenRows, [n, H]) });
    timings.segProjection = performance.now() - started;
    started = performance.now();
    const decoded = await runGraph(this.pack, 'samMaskDecoder', {
      image_embeddings: floatTensor('float32', samEmbeddings, SAM_EMBEDDINGS_SHAPE),
      seg_embeddings: projected.seg_embeddings as ort.Tensor,
    });
    timings.maskDecoder = performance.now() - started;
    started = performance.now();
    const lowRes = decoded.low_res_masks!.data as Float32Array;
    const scores = decoded.iou_predictions!.data as Float32Array;
    const { original, resized } = image.features;
    // Here, not on a pixel worker: the engine has a thread of its own (thread-host.ts), idle
    // by now, and a worker's two hops cost a 1080p turn more than the work itself.
    const masks = maskSummariesFromLowRes(lowRes, n, SAM_LOW_RES, manifest.sam.size, resized, original);
    const segments = masks.map(({ rle, area, bbox }, i) => ({ rle, area, bbox, score: scores[i] ?? 0 }));
    timings.postprocess = performance.now() - started;
    return segments;
  }
}
