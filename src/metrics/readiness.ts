/**
 * Whether this process is ready to answer (`/readyz`): not while the model
 * loads, ready once it is loaded and serving, not again once shutting down;
 * and, at any time, not while one of its checks fails (the job queue's Redis
 * unreachable). Alive (`/healthz`) is a different question: a loading
 * process is alive.
 */
export interface ReadinessState {
  ready: boolean;
  /** Why not, in words, when not ready. */
  reason?: string;
}

/** Undefined while fine; otherwise why this process cannot answer now, in words. */
export type ReadinessCheck = () => string | undefined;

export class Readiness {
  private reason: string | undefined = 'the model is loading';
  private readonly checks: ReadinessCheck[] = [];

  state(): ReadinessState {
    // Loading and shutting down come first: they say more than a check does.
    if (this.reason !== undefined) return { ready: false, reason: this.reason };
    for (const check of this.checks) {
      const reason = runCheck(check);
      if (reason !== undefined) return { ready: false, reason };
    }
    return { ready: true };
  }

  markReady(): void {
    this.reason = undefined;
  }

  markNotReady(reason: string): void {
    this.reason = reason;
  }

  /** A condition asked at every state(), after markReady() too; returns a function that removes it. */
  addCheck(check: ReadinessCheck): () => void {
    this.checks.push(check);
    return () => {
      const index = this.checks.indexOf(check);
      if (index >= 0) this.checks.splice(index, 1);
    };
  }
}

function runCheck(check: ReadinessCheck): string | undefined {
  try {
    return check();
  } catch (error) {
    // A check that throws cannot vouch for readiness; /readyz still answers.
    return `a readiness check failed: ${(error as Error)?.message ?? String(error)}`;
  }
}
