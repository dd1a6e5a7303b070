import { describe, expect, it } from 'vitest';
import { type Sample, parseExposition, sampleValue as value } from './helpers/prometheus.js';
import { Client, shapesPng, toyWebForFile } from './helpers/web.js';

// The web chat over the real runtime on the toy pack, as `lisa-bot serve` wires it.
const web = toyWebForFile();
const png = await shapesPng();

async function scrape(): Promise<Sample[]> {
  const response = await fetch(`${web.url}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await response.text()).samples;
}

describe('metrics and readiness on the web chat', () => {
  it('says it is ready once the model is loaded', async () => {
    const response = await fetch(`${web.url}/readyz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ready: true });
    expect((await fetch(`${web.url}/healthz`)).status).toBe(200);
  });

  it('counts and times an answered turn, with the time of each graph it ran', async () => {
    const before = await scrape();
    expect(value(before, 'lisabot_execution_provider', { provider: 'cpu' })).toBe(1);
    expect(value(before, 'lisabot_model_load_seconds')).toBeGreaterThan(0);
    expect(value(before, 'lisabot_queue_depth', { state: 'waiting' })).toBe(0);
    expect(value(before, 'lisabot_queue_depth', { state: 'running' })).toBe(0);

    const { view } = await new Client(web.url).answered('where is the red square?', { data: png, name: 'shapes.png' });
    expect(view.state, JSON.stringify(view)).toBe('done');

    const after = await scrape();
    const answered = { outcome: 'answered', code: '' };
    expect(value(after, 'lisabot_turns_total', answered) - value(before, 'lisabot_turns_total', answered)).toBe(1);
    const latencyCount = 'lisabot_turn_duration_seconds_count';
    expect(value(after, latencyCount) - value(before, latencyCount)).toBe(1);
    expect(value(after, 'lisabot_turn_duration_seconds_sum')).toBeGreaterThan(0);

    const graphs = new Set(after.filter((s) => s.name === 'lisabot_graph_duration_seconds_count' && s.value > 0).map((s) => s.labels.graph));
    // The toy turn runs the whole pipeline: image encoders, the decoder, and the mask decoder.
    expect(graphs.size, [...graphs].join(', ')).toBeGreaterThanOrEqual(3);
    expect([...graphs].some((g) => /decoder/i.test(g!)), [...graphs].join(', ')).toBe(true);
    expect(value(after, 'lisabot_image_embedding_cache_total', { result: 'miss' })).toBeGreaterThanOrEqual(1);
  });

  it('counts a refused turn under its error code, not as answered', async () => {
    const before = await scrape();
    const { status, body } = await new Client(web.url).ask('', { data: png });
    expect(status).toBe(400);
    expect(body.error.code).toBe('question_empty');
    const after = await scrape();
    const refused = { outcome: 'user_error', code: 'question_empty' };
    expect(value(after, 'lisabot_turns_total', refused) - value(before, 'lisabot_turns_total', refused)).toBe(1);
    const answered = { outcome: 'answered', code: '' };
    expect(value(after, 'lisabot_turns_total', answered)).toBe(value(before, 'lisabot_turns_total', answered));
    expect(value(after, 'lisabot_turn_duration_seconds_count')).toBe(value(before, 'lisabot_turn_duration_seconds_count'));
  });
});
