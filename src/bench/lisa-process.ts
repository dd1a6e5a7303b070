/**
 * `lisa-bot serve` and `lisa-bot worker` as real child processes, as an
 * operator runs them: their JSON log lines (stderr is not a terminal) are
 * collected so a caller can wait for "worker ready" or see which process ran a
 * turn. Shared by the scale-out benchmark and the multi-process tests.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The `lisa-bot` executable, run with this Node as a user would (node src/bin.js …). */
const BIN = fileURLToPath(new URL('../bin.js', import.meta.url));

export interface LogLine {
  msg: string;
  level: number;
  [key: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class LisaProcess {
  readonly lines: LogLine[] = [];
  /** Whatever was not a JSON log line (a crash's stack trace), for failure messages. */
  readonly other: string[] = [];
  readonly exited: Promise<Exit>;
  private readonly child: ChildProcess;
  private waiters: Array<() => void> = [];

  /** `env` is laid over this process's environment; a key set to undefined is left out. */
  constructor(
    readonly name: string,
    args: string[],
    env: NodeJS.ProcessEnv = {},
  ) {
    const merged: NodeJS.ProcessEnv = { ...process.env, ...env };
    for (const key of Object.keys(merged)) if (merged[key] === undefined) delete merged[key];
    this.child = spawn(process.execPath, [BIN, ...args], { env: merged, stdio: ['ignore', 'ignore', 'pipe'] });
    createInterface({ input: this.child.stderr! }).on('line', (text) => {
      try {
        this.lines.push(JSON.parse(text) as LogLine);
      } catch {
        this.other.push(text);
      }
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    void this.exited.then(() => {
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The first log line that matches, waiting for it; fails if the process exits first. */
  async waitFor(match: (line: LogLine) => boolean, what: string): Promise<LogLine> {
    for (;;) {
      const found = this.lines.find(match);
      if (found) return found;
      if (!this.running) throw new Error(`${this.name} exited before "${what}":\n${this.tail()}`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Job ids of the turns this process logged with `msg` ('turn started', 'turn finished'). */
  jobs(msg: string): string[] {
    return this.lines.filter((line) => line.msg === msg).map((line) => String(line.jobId));
  }

  kill(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  async stop(): Promise<void> {
    this.kill('SIGKILL');
    await this.exited;
  }

  tail(n = 30): string {
    return [...this.lines.slice(-n).map((line) => JSON.stringify(line)), ...this.other.slice(-n)].join('\n');
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * SIGKILLs `worker` while it holds a turn, and returns that turn's job id.
 * Toy turns are short, so the worker is frozen first (SIGSTOP) and its log
 * read: it is killed only when it has started a turn it has not finished.
 * Returns '' when `abandoned()` says to stop looking.
 */
export async function killMidTurn(worker: LisaProcess, abandoned: () => boolean = () => false): Promise<string> {
  for (let seen = 1; !abandoned(); seen++) {
    await worker.waitFor(() => abandoned() || worker.jobs('turn started').length >= seen, `turn ${seen} started on ${worker.name}`);
    if (abandoned()) break;
    worker.kill('SIGSTOP');
    // Lines it wrote before it froze may still be in the pipe.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const finished = new Set(worker.jobs('turn finished'));
    const holding = worker.jobs('turn started').find((id) => !finished.has(id));
    if (holding) {
      worker.kill('SIGKILL');
      return holding;
    }
    worker.kill('SIGCONT');
  }
  return '';
}
