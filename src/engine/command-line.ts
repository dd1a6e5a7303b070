/**
 * onnxruntime-node's bundled telemetry reads /proc/self/cmdline when the first
 * session is created and runs a backtracking std::regex over it, which recurses
 * once per byte on the calling thread's stack: a ~29,000-byte command line
 * overflows an 8 MiB stack (the main thread's), ~14,500 bytes the 4 MiB of a
 * default worker thread, and the process dies with SIGSEGV. The command line is
 * the whole process's, so every thread that creates sessions (the main thread,
 * the engine thread) is exposed; refusing a long one first is the only cure.
 */
import { readFileSync } from 'node:fs';
import { UserInputError } from '../errors.js';

/** Half of what overflows the smallest stack sessions are created on (the main thread's 8 MiB; the engine thread gets 16). */
export const MAX_COMMAND_LINE_BYTES = 14_000;

/** This process's command line in bytes, as onnxruntime reads it; 0 where there is no /proc (and no such telemetry). */
export function commandLineBytes(): number {
  try {
    return readFileSync('/proc/self/cmdline').length;
  } catch {
    return 0;
  }
}

/** Throws before anything creates an onnxruntime session when the command line would crash it. */
export function checkCommandLine(bytes = commandLineBytes()): void {
  if (bytes <= MAX_COMMAND_LINE_BYTES) return;
  throw new UserInputError(
    `The command line is ${bytes.toLocaleString('en-US')} bytes long, and ONNX Runtime crashes on command lines much over ` +
      `${MAX_COMMAND_LINE_BYTES.toLocaleString('en-US')} bytes. Pass a long question with --question-file FILE, or on stdin with "-".`,
    'command_line_too_long',
  );
}
