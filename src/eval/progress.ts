/**
 * Progress on stderr: a bar redrawn in place on a terminal; in a log (not a
 * terminal) a line now and then, so that a run of hours neither floods the
 * log nor looks stuck.
 */

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

const LOG_EVERY_MS = 10_000;
const BAR = 24;

export class Progress {
  private started = performance.now();
  private done = 0;
  private lastLog = -Infinity;
  private drawn = false;

  /** `total`: samples this run will try (those already in --out are not counted). */
  constructor(
    private readonly total: number,
    private readonly stream: ProgressStream,
  ) {}

  /** Shows 0/total at once: the first sample of a real pack can take minutes. */
  start(): void {
    this.show(performance.now(), undefined);
  }

  /** One sample finished (scored or skipped). */
  tick(label: { gIoU: number; cIoU: number } | undefined): void {
    this.done++;
    const now = performance.now();
    const last = this.done === this.total;
    if (!this.stream.isTTY && !last && this.done > 1 && now - this.lastLog < LOG_EVERY_MS) return;
    this.show(now, label);
  }

  private show(now: number, label: { gIoU: number; cIoU: number } | undefined): void {
    this.lastLog = now;
    const line = this.line(now, label);
    if (this.stream.isTTY) {
      this.stream.write(`\r${line}\x1b[K`);
      this.drawn = true;
    } else {
      this.stream.write(`${line}\n`);
    }
  }

  /** Ends the bar's line, so that what follows starts on its own. */
  finish(): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }

  /** A message on a line of its own, the bar (if any) kept below it. */
  note(message: string): void {
    if (this.drawn) this.stream.write('\r\x1b[K');
    this.stream.write(`${message}\n`);
    this.drawn = false;
  }

  /** Time that is not the samples' own (loading the model), left out of the rate. */
  exclude(ms: number): void {
    this.started += ms;
  }

  private line(now: number, score: { gIoU: number; cIoU: number } | undefined): string {
    const seconds = (now - this.started) / 1000;
    const rate = seconds > 0 ? this.done / seconds : 0;
    const filled = Math.round((BAR * this.done) / Math.max(1, this.total));
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(BAR - filled)}]`;
    const eta = rate > 0 ? duration((this.total - this.done) / rate) : '?';
    const scores = score ? `  gIoU ${score.gIoU.toFixed(2)} cIoU ${score.cIoU.toFixed(2)}` : '';
    return `${bar} ${this.done}/${this.total}  ${rate.toFixed(2)} samples/s  ETA ${eta}${scores}`;
  }
}

/** 3h05m, 4m12s, 9s. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}
