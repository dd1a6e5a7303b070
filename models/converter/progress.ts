/**
 * Conversion progress on stderr: one updating line per stage on a terminal,
 * plain lines (a few per stage) when stderr is a file or a pipe, so that logs
 * of long conversions stay readable.
 */
export interface ConvertProgress {
  /** A new stage: e.g. `decoder` with its tensor count and bytes to read. */
  stage(name: string, tensors: number, bytes: number): void;
  /** One checkpoint tensor consumed by the current stage. */
  tensor(name: string, bytes: number): void;
  /** A line of its own (files found, downloads, warnings). */
  note(line: string): void;
  done(): void;
}

export const silentProgress: ConvertProgress = { stage() {}, tensor() {}, note() {}, done() {} };

export function formatBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} kB`;
  return `${bytes} B`;
}

export function stderrProgress(stream: NodeJS.WriteStream = process.stderr): ConvertProgress {
  const tty = stream.isTTY === true;
  let current: { name: string; tensors: number; bytes: number; doneTensors: number; doneBytes: number; started: number; lastDecile: number } | undefined;
  let index = 0;
  const line = () => {
    if (!current) return '';
    const pct = current.bytes > 0 ? Math.floor((100 * current.doneBytes) / current.bytes) : 100;
    return `[${index}] ${current.name}: ${current.doneTensors}/${current.tensors} tensors, ${formatBytes(current.doneBytes)}/${formatBytes(current.bytes)} (${pct}%)`;
  };
  const finishStage = () => {
    if (!current) return;
    const seconds = ((performance.now() - current.started) / 1000).toFixed(1);
    stream.write(`${tty ? '\r\x1b[K' : ''}${line()} in ${seconds} s\n`);
    current = undefined;
  };
  return {
    stage(name, tensors, bytes) {
      finishStage();
      index++;
      current = { name, tensors, bytes, doneTensors: 0, doneBytes: 0, started: performance.now(), lastDecile: 0 };
      if (tty) stream.write(`\r\x1b[K${line()}`);
    },
    tensor(_name, bytes) {
      if (!current) return;
      current.doneTensors++;
      current.doneBytes += bytes;
      if (tty) {
        stream.write(`\r\x1b[K${line()}`);
      } else {
        const decile = current.bytes > 0 ? Math.floor((10 * current.doneBytes) / current.bytes) : 10;
        // Plain output: a line each quarter, enough to see a long stage move.
        if (decile >= current.lastDecile + 3 && decile < 10) {
          current.lastDecile = decile;
          stream.write(`${line()}\n`);
        }
      }
    },
    note(text) {
      if (tty && current) stream.write(`\r\x1b[K${text}\n${line()}`);
      else stream.write(`${text}\n`);
    },
    done() {
      finishStage();
    },
  };
}
