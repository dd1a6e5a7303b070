/**
 * Turns through the web chat's API as the page sends them: each its own
 * conversation (a fresh session cookie), with an image, answered when the
 * turn's event stream (SSE) says done or error. Also the resident-memory
 * sampler that watches the processes while the turns run.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { procStatus } from './served.js';

export interface TurnOutcome {
  turnId: string;
  /** The BullMQ job id a worker logs for this turn. */
  jobId: string;
  cookie: string;
  state: 'done' | 'error';
  /** Date.now() when the final state arrived. */
  settledAt: number;
  error?: unknown;
}

const QUESTIONS = ['Where is the red object?', 'Segment the blue shape.', 'What is green here?'];

export async function postTurn(base: string, question: string, image: Uint8Array): Promise<{ turnId: string; cookie: string }> {
  const form = new FormData();
  form.set('question', question);
  form.set('image', new Blob([image], { type: 'image/jpeg' }), 'photo.jpg');
  const posted = await fetch(`${base}/api/turns`, { method: 'POST', body: form });
  const text = await posted.text();
  if (posted.status !== 202) throw new Error(`POST /api/turns answered ${posted.status}: ${text}`);
  const cookie = (posted.headers.get('set-cookie') ?? '').split(';')[0]!;
  return { turnId: (JSON.parse(text) as { turnId: string }).turnId, cookie };
}

/** Follows the turn's event stream until its final state. */
export async function awaitTurn(base: string, turnId: string, cookie: string, timeoutMs: number): Promise<TurnOutcome> {
  const response = await fetch(`${base}/api/turns/${turnId}/events`, { headers: { cookie }, signal: AbortSignal.timeout(timeoutMs) });
  if (response.status !== 200 || !response.body) throw new Error(`GET /api/turns/${turnId}/events answered ${response.status}`);
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of response.body) {
    buffered += decoder.decode(chunk as Uint8Array, { stream: true });
    let end: number;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const event = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const data = event.split('\n').find((line) => line.startsWith('data: '));
      if (!data) continue;
      const view = JSON.parse(data.slice(6)) as { state: string; error?: unknown };
      if (view.state === 'done' || view.state === 'error') {
        await response.body.cancel().catch(() => undefined);
        return { turnId, jobId: `web:${turnId}`, cookie, state: view.state, settledAt: Date.now(), error: view.error };
      }
    }
  }
  throw new Error(`the event stream of turn ${turnId} ended before it was answered`);
}

/** How many question/answer pairs the turn's conversation stored (exactly one, for a turn answered once). */
export async function storedTurns(base: string, cookie: string): Promise<number> {
  const response = await fetch(`${base}/api/conversation`, { headers: { cookie } });
  if (response.status !== 200) throw new Error(`GET /api/conversation answered ${response.status}`);
  return ((await response.json()) as { turns: unknown[] }).turns.length;
}

export interface Burst {
  /** Date.now() just before the first upload. */
  startedAt: number;
  outcomes: TurnOutcome[];
  /** First upload to last answer. */
  seconds: number;
}

/**
 * Posts every image as its own turn at once (as many users asking together)
 * and waits for every answer.
 */
export async function burst(base: string, images: readonly Uint8Array[], timeoutMs: number): Promise<Burst> {
  const startedAt = Date.now();
  const outcomes = await Promise.all(
    images.map(async (image, i) => {
      const { turnId, cookie } = await postTurn(base, QUESTIONS[i % QUESTIONS.length]!, image);
      return awaitTurn(base, turnId, cookie, timeoutMs);
    }),
  );
  const lastAt = Math.max(...outcomes.map((o) => o.settledAt));
  return { startedAt, outcomes, seconds: (lastAt - startedAt) / 1000 };
}

/** Samples VmRSS of the given processes until stopped. */
export class RssSampler {
  private readonly peaks = new Map<number, number>();
  private running = true;
  private readonly loop: Promise<void>;

  constructor(
    private readonly pids: readonly number[],
    everyMs = 100,
  ) {
    this.loop = (async () => {
      while (this.running) {
        await this.sample();
        await sleep(everyMs);
      }
    })();
  }

  private async sample(): Promise<void> {
    for (const pid of this.pids) {
      const mb = await procStatus(pid, 'VmRSS');
      if (mb !== undefined) this.peaks.set(pid, Math.max(mb, this.peaks.get(pid) ?? 0));
    }
  }

  /** Stops sampling (after one last sample) and returns each pid's peak. */
  async stop(): Promise<Map<number, number>> {
    this.running = false;
    await this.loop;
    await this.sample();
    return this.peaks;
  }
}

/** Linux's USER_HZ, the unit of /proc/<pid>/stat's times, on every architecture Node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

/** CPU time (user + system) the process has used so far; undefined where /proc is not available. */
export async function cpuSeconds(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (2nd field) may hold spaces; the fields after it are fixed: utime and stime are the 14th and 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}
