import { type Command, Option } from 'commander';
import { DEFAULT_DECODER_FORM, convertCheckpoint, summaryText } from '../../models/converter/convert.js';
import { stderrProgress } from '../../models/converter/progress.js';
import { DEFAULT_BLOCK_SIZE, parseQuantization } from '../../models/converter/quantize.js';
import { writeBenchPack } from '../../models/generator/bench.js';
import { type PackDtype, packDtypes } from '../engine/floats.js';
import { UserInputError } from '../errors.js';
import { writeToyPack } from '../../models/generator/toy.js';

/** The packs lisa-bot generates itself: demos, not LISA. */
const DEMO_PACKS = [
  { name: 'toy', description: 'write the toy pack: a tiny LISA that really segments palette colours (a demo, not LISA)', write: writeToyPack },
  {
    name: 'bench',
    description: 'write the bench pack: LISA-shaped graphs with fixed random weights, to measure speed (answers are nonsense)',
    write: writeBenchPack,
  },
];

export function registerModels(program: Command): void {
  const models = program.command('models').description('make and inspect model packs');
  for (const pack of DEMO_PACKS) {
    models
      .command(pack.name)
      .description(pack.description)
      .requiredOption('--out <dir>', 'folder to write the pack into')
      .addOption(new Option('--dtype <dtype>', 'the float type of its language model').choices(packDtypes).default('float32'))
      .action(async (options: { out: string; dtype: PackDtype }) => {
        await pack.write(options.out, { dtype: options.dtype });
        process.stdout.write(`${pack.name} pack written to ${options.out}\n`);
      });
  }
  models
    .command('convert')
    .description('convert a published LISA checkpoint (and its CLIP vision tower) into a model pack')
    .requiredOption('--checkpoint <dir|hub id>', 'LISA checkpoint folder, or a Hugging Face id such as xinlai/LISA-7B-v1')
    .option('--vision-tower <dir|hub id>', "CLIP folder or Hub id (default: the checkpoint config's vision_tower)")
    .requiredOption('--out <dir>', 'folder to write the pack into')
    .addOption(new Option('--dtype <dtype>', 'float16 (GPUs; half the size) or float32 (runs everywhere)').choices(packDtypes).default('float16'))
    .addOption(
      new Option('--decoder <form>', 'decoder graph: fused (GroupQueryAttention, greedy choice in the graph) or plain (any provider)')
        .choices(['fused', 'plain'])
        .default(DEFAULT_DECODER_FORM),
    )
    .option('--no-device-loop', 'a fused decoder without the greedy ONNX Loop (smaller by the embedding table; see docs/converter.md)')
    .addOption(
      new Option('--quantize <bits>', "the LLM decoder's linear layers as int4 or int8 MatMulNBits (smaller, faster to decode; vision, SAM and the [SEG] projection stay float)").choices([
        'int4',
        'int8',
      ]),
    )
    .option('--block-size <n>', `weights per quantization scale, with --quantize: 16, 32, 64, 128 or 256 (default ${DEFAULT_BLOCK_SIZE})`)
    .addOption(new Option('--template <name>', 'conversation template').choices(['llava_v1', 'llava_llama_2']).default('llava_v1'))
    .option('--max-new-tokens <n>', 'longest answer the pack generates', '512')
    .addOption(new Option('--external-data <when>', 'weights in *.onnx.data files: for large graphs, or always').choices(['auto', 'always']).default('auto'))
    .option('--force', 'replace --out when it already holds files')
    .action(async (options: ConvertCliOptions) => {
      const maxNewTokens = Number(options.maxNewTokens);
      if (!Number.isInteger(maxNewTokens) || maxNewTokens <= 0) {
        throw new UserInputError(`--max-new-tokens must be a positive whole number, not "${options.maxNewTokens}"`, 'config_invalid');
      }
      const quantization = parseQuantization(options.quantize, options.blockSize);
      const summary = await convertCheckpoint({
        checkpoint: options.checkpoint,
        visionTower: options.visionTower,
        out: options.out,
        dtype: options.dtype,
        decoder: options.decoder,
        deviceLoop: options.deviceLoop,
        quantization,
        template: options.template,
        maxNewTokens,
        externalData: options.externalData,
        force: options.force === true,
        progress: stderrProgress(),
      });
      process.stderr.write(summaryText(summary));
    });
}

interface ConvertCliOptions {
  checkpoint: string;
  visionTower?: string;
  out: string;
  dtype: PackDtype;
  decoder: 'fused' | 'plain';
  deviceLoop: boolean;
  quantize?: 'int4' | 'int8';
  blockSize?: string;
  template: 'llava_v1' | 'llava_llama_2';
  maxNewTokens: string;
  externalData: 'auto' | 'always';
  force?: boolean;
}
