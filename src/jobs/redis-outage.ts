/** Whether a Redis client is connected, seen through its connection events. */
export interface WatchedClient {
  readonly status: string;
  on(event: 'close' | 'ready', listener: () => void): unknown;
  off(event: 'close' | 'ready', listener: () => void): unknown;
}

/** How long submitted jobs wait for a lost Redis before they are refused ('queue_unavailable'). */
export const QUEUE_OUTAGE_GRACE_MS = 15_000;

/**
 * Follows a set of clients of one Redis: `reachable` while all are ready.
 * When one drops, `graceOver` runs unless all are ready again within
 * `graceMs`; when all are ready again after a drop, `back` runs (once per outage).
 */
export class RedisOutage {
  private down = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly onClose = () => this.lost();
  private readonly onReady = () => this.ready();

  constructor(
    private readonly clients: WatchedClient[],
    private readonly graceMs: number,
    private readonly handlers: { graceOver(): void; back(): void },
  ) {
    for (const client of clients) {
      client.on('close', this.onClose);
      client.on('ready', this.onReady);
    }
    if (!this.reachable()) this.lost();
  }

  reachable(): boolean {
    return this.clients.every((client) => client.status === 'ready');
  }

  stop(): void {
    clearTimeout(this.timer);
    for (const client of this.clients) {
      client.off('close', this.onClose);
      client.off('ready', this.onReady);
    }
  }

  private lost(): void {
    // Clients report 'close' again on every failed reconnect: one outage, one timer.
    if (this.down) return;
    this.down = true;
    this.timer = setTimeout(() => this.handlers.graceOver(), this.graceMs);
    // A closing process must not wait for the grace period.
    this.timer.unref();
  }

  private ready(): void {
    if (!this.down || !this.reachable()) return;
    this.down = false;
    clearTimeout(this.timer);
    this.handlers.back();
  }
}
