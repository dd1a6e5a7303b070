/**
 * Whether this process is ready to answer (`/readyz`): not while the model
 * loads, ready once it is loaded and serving, not again once shutting down.
 * Alive (`/healthz`) is a different question: a loading process is alive.
 */
export interface ReadinessState {
  ready: boolean;
  /** Why not, in words, when not ready. */
  reason?: string;
}

export class Readiness {
  private reason: string | undefined = 'the model is loading';

  state(): ReadinessState {
    return this.reason === undefined ? { ready: true } : { ready: false, reason: this.reason };
  }

  markReady(): void {
    this.reason = undefined;
  }

  markNotReady(reason: string): void {
    this.reason = reason;
  }
}
