/**
 * Ends every run with what was skipped and why, under the totals, where a
 * reader looks: the helpers' reasons (redis.ts, web.ts, python.ts) are
 * otherwise printed once while the file is collected, far up the output.
 */
import type { Reporter, TestModule } from 'vitest/node';

/** What the availability helpers print: "<what> is not installed …; skipping the <which> tests". */
const SKIP_REASON = /; skipping the .* tests?$/;

export default class SkipReporter implements Reporter {
  private readonly reasons = new Map<string, Set<string>>();

  onUserConsoleLog(log: { content: string; taskId?: string }): void {
    const reason = log.content.trim();
    if (!SKIP_REASON.test(reason)) return;
    const key = log.taskId ?? '';
    this.reasons.set(key, (this.reasons.get(key) ?? new Set()).add(reason));
  }

  onTestRunEnd(modules: readonly TestModule[]): void {
    const lines: string[] = [];
    let total = 0;
    for (const module of modules) {
      const tests = [...module.children.allTests()];
      const skipped = tests.filter((test) => test.result().state === 'skipped').length;
      // Printed while the file was collected (the module's id) or by a test that then skipped itself (its id).
      const reasons = new Set<string>();
      for (const id of [module.id, ...tests.map((test) => test.id)]) {
        for (const reason of this.reasons.get(id) ?? []) reasons.add(reason);
        this.reasons.delete(id);
      }
      // Only what the machine lacks: a -t filter or an it.skip is the reader's own doing.
      if (reasons.size === 0) continue;
      total += skipped;
      lines.push(`  ${module.relativeModuleId}: ${skipped} skipped: ${[...reasons].join('; ')}`);
    }
    for (const reasons of this.reasons.values()) for (const reason of reasons) lines.push(`  ${reason}`);
    if (lines.length === 0) return;
    process.stdout.write(`\nSkipped ${total} test${total === 1 ? '' : 's'} for want of a tool on this machine:\n${lines.join('\n')}\n`);
  }
}
