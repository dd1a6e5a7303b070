/**
 * Download progress on stderr: a bar per file on a terminal (cli-progress),
 * plain lines every few seconds otherwise (logs, CI), so a redirected stderr
 * does not fill with carriage returns.
 */
import cliProgress from 'cli-progress';
import type { HubProgressEvent } from './hub-download.js';

export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? Math.round(value) : value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}

interface Rate {
  startedAt: number;
  from: number;
}

const rateText = (rate: Rate | undefined, done: number) => {
  if (!rate) return '';
  const seconds = (Date.now() - rate.startedAt) / 1000;
  return seconds > 0 ? `${formatBytes((done - rate.from) / seconds)}/s` : '';
};

const PLAIN_EVERY_MS = 5000;
const BAR_FROM_BYTES = 1_000_000;

export function stderrHubProgress(stream: NodeJS.WriteStream = process.stderr): (event: HubProgressEvent) => void {
  return stream.isTTY ? barProgress(stream) : lineProgress(stream);
}

function lineProgress(stream: NodeJS.WritableStream): (event: HubProgressEvent) => void {
  const rates = new Map<string, Rate>();
  let lastLine = 0;
  return (event) => {
    const key = `${event.repo}/${'file' in event ? event.file : ''}`;
    switch (event.type) {
      case 'note':
        stream.write(`${event.message}\n`);
        break;
      case 'start':
        rates.set(key, { startedAt: Date.now(), from: event.from });
        lastLine = Date.now();
        stream.write(
          `Downloading ${key} (${formatBytes(event.total)}${event.from > 0 ? `, continuing from ${formatBytes(event.from)}` : ''})\n`,
        );
        break;
      case 'bytes':
        if (Date.now() - lastLine < PLAIN_EVERY_MS) break;
        lastLine = Date.now();
        stream.write(`  ${event.file}: ${formatBytes(event.done)} / ${formatBytes(event.total)} ${rateText(rates.get(key), event.done)}\n`);
        break;
      case 'retry':
        stream.write(`  ${event.file}: ${event.reason} at ${formatBytes(event.done)}; retrying\n`);
        break;
      case 'end':
        stream.write(
          event.cached
            ? `${key}: in the cache (${formatBytes(event.total)})\n`
            : `  ${event.file}: done, ${formatBytes(event.total)} ${rateText(rates.get(key), event.total)}\n`,
        );
        rates.delete(key);
        break;
    }
  };
}

function barProgress(stream: NodeJS.WriteStream): (event: HubProgressEvent) => void {
  let bar: cliProgress.SingleBar | undefined;
  let rate: Rate | undefined;
  const payload = (file: string, done: number, total: number) => ({
    file,
    done: formatBytes(done),
    size: formatBytes(total),
    rate: rateText(rate, done),
  });
  const stop = () => {
    bar?.stop();
    bar = undefined;
  };
  return (event) => {
    switch (event.type) {
      case 'note':
        stop();
        stream.write(`${event.message}\n`);
        break;
      case 'start':
        stop();
        rate = { startedAt: Date.now(), from: event.from };
        // Small files (configs, tokenizer) finish before a bar would be seen: one line at the end.
        if (event.total < BAR_FROM_BYTES) break;
        bar = new cliProgress.SingleBar(
          { stream, format: '{file} [{bar}] {percentage}% {done} / {size} {rate} ETA {eta_formatted}', hideCursor: null, etaBuffer: 50 },
          cliProgress.Presets.shades_classic,
        );
        bar.start(event.total, event.from, payload(event.file, event.from, event.total));
        break;
      case 'bytes':
        bar?.update(event.done, payload(event.file, event.done, event.total));
        break;
      case 'retry':
        stop();
        stream.write(`${event.file}: ${event.reason} at ${formatBytes(event.done)}; retrying\n`);
        break;
      case 'end':
        if (event.cached) {
          stream.write(`${event.repo}/${event.file}: in the cache (${formatBytes(event.total)})\n`);
        } else if (bar) {
          bar.update(event.total, payload(event.file, event.total, event.total));
          stop();
        } else {
          stream.write(`${event.repo}/${event.file}: downloaded (${formatBytes(event.total)})\n`);
        }
        break;
    }
  };
}
