/**
 * The Python that runs the PyTorch reference and the fixture makers: Debian's
 * python3 with python3-torch, numpy, PIL, sentencepiece and opencv. On hosts
 * where `python3` on PATH is another interpreter (pyenv, a venv), Debian's
 * /usr/bin/python3 is the one with those packages, so it is tried first.
 */
import { execFileSync } from 'node:child_process';

const CANDIDATES = ['/usr/bin/python3', 'python3'];
const MODULES = 'import torch, numpy, PIL, sentencepiece, cv2';

let found: string | null | undefined;

/** The first interpreter that imports every module the reference needs, or null. */
export function findReferencePython(): string | null {
  if (found !== undefined) return found;
  found = null;
  for (const candidate of CANDIDATES) {
    try {
      execFileSync(candidate, ['-c', MODULES], { stdio: 'ignore', timeout: 60_000 });
      found = candidate;
      break;
    } catch {
      // not this one
    }
  }
  return found;
}

/**
 * Whether the suites that need the reference run. Where the packages are
 * missing they are skipped with a printed reason, except in CI, where a
 * skipped parity suite would hide an unproven converter: there they fail.
 */
export function pythonAvailability(): { skip: boolean; python: string; reason?: string } {
  const python = findReferencePython();
  if (python) return { skip: false, python };
  const reason =
    'Debian python3 with python3-torch, python3-numpy, python3-pil, python3-sentencepiece and python3-opencv is not installed; skipping the tests that need the PyTorch reference';
  if (process.env.CI === 'true') throw new Error(reason.replace('; skipping', ' (required in CI); cannot run'));
  console.warn(reason);
  return { skip: true, python: 'python3', reason };
}
