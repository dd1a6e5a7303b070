/**
 * The fake gateway (API v10, JSON, no compression): HELLO on connect, READY
 * (then the guild's GUILD_CREATE) on IDENTIFY, ACK for every heartbeat, and
 * RESUME that replays the dispatches the client missed, then RESUMED.
 * Dispatches sent while no client is connected wait in the session's log.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';

interface Dispatch {
  s: number;
  t: string;
  d: unknown;
}

interface Session {
  id: string;
  intents: number;
  seq: number;
  log: Dispatch[];
  socket?: WebSocket;
}

export interface GatewayHooks {
  token: string;
  /** READY's `d` and the dispatches that follow it (GUILD_CREATE), for a new session. */
  ready(sessionId: string, resumeUrl: string): { ready: Record<string, unknown>; after: { t: string; d: unknown }[] };
}

export class FakeGateway {
  readonly wss = new WebSocketServer({ noServer: true });
  url = '';
  identifies = 0;
  resumes = 0;
  heartbeats = 0;
  /** The sequence number of the latest heartbeat: what the client has received. */
  acknowledgedSeq = 0;
  private session: Session | undefined;
  private readonly sessions = new Map<string, Session>();
  private waiting: (() => void)[] = [];
  onHeartbeat: (() => void) | undefined;

  constructor(
    private readonly hooks: GatewayHooks,
    private readonly heartbeatInterval = 1_000,
  ) {
    this.wss.on('connection', (socket) => this.onConnection(socket));
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.wss.handleUpgrade(request, socket, head, (ws) => this.wss.emit('connection', ws, request));
  }

  /** The intents of the current session (0 before IDENTIFY). */
  get intents(): number {
    return this.session?.intents ?? 0;
  }

  get connected(): boolean {
    return this.session?.socket?.readyState === 1;
  }

  dispatch(t: string, d: unknown): void {
    const session = this.session;
    if (!session) throw new Error('fake gateway: no session to dispatch to');
    const entry = { s: ++session.seq, t, d };
    session.log.push(entry);
    if (session.socket?.readyState === 1) this.send(session.socket, { op: 0, ...entry });
  }

  /** Re-sends an already dispatched event (as Discord may after a resume), with a new sequence number. */
  redeliver(t: string, d: unknown): void {
    this.dispatch(t, d);
  }

  /** Drops the connection the way a network failure does (no close frame); the session stays resumable. */
  drop(): void {
    this.session?.socket?.terminate();
  }

  /** Resolves when a client has resumed or identified after `drop`. */
  async waitForReconnect(): Promise<void> {
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** The current session's latest sequence number. */
  get seq(): number {
    return this.session?.seq ?? 0;
  }

  /** Resolves once a heartbeat shows that the client has received everything dispatched so far. */
  async caughtUp(): Promise<void> {
    const target = this.seq;
    if (this.acknowledgedSeq >= target) return;
    await new Promise<void>((resolve) => {
      this.onHeartbeat = () => {
        if (this.acknowledgedSeq < target) return;
        this.onHeartbeat = undefined;
        resolve();
      };
    });
  }

  close(): void {
    for (const client of this.wss.clients) client.terminate();
    this.wss.close();
  }

  private onConnection(socket: WebSocket): void {
    this.send(socket, { op: 10, d: { heartbeat_interval: this.heartbeatInterval } });
    socket.on('message', (raw) => {
      const payload = JSON.parse(String(raw)) as { op: number; d: any };
      this.onPayload(socket, payload);
    });
    socket.on('close', () => {
      if (this.session?.socket === socket) this.session.socket = undefined;
    });
  }

  private onPayload(socket: WebSocket, { op, d }: { op: number; d: any }): void {
    switch (op) {
      case 1:
        this.heartbeats++;
        this.acknowledgedSeq = Math.max(this.acknowledgedSeq, Number(d ?? 0));
        this.onHeartbeat?.();
        this.send(socket, { op: 11 });
        return;
      case 2: {
        if (d.token !== this.hooks.token) return void socket.close(4004, 'Authentication failed');
        this.identifies++;
        const session: Session = { id: `session-${this.identifies}`, intents: Number(d.intents), seq: 0, log: [], socket };
        this.sessions.set(session.id, session);
        this.session = session;
        const { ready, after } = this.hooks.ready(session.id, this.url);
        this.dispatch('READY', ready);
        for (const event of after) this.dispatch(event.t, event.d);
        this.notifyReconnected();
        return;
      }
      case 6: {
        const session = this.sessions.get(d.session_id);
        if (!session || d.token !== this.hooks.token) return void this.send(socket, { op: 9, d: false });
        this.resumes++;
        session.socket = socket;
        this.session = session;
        for (const entry of session.log.filter((e) => e.s > Number(d.seq))) this.send(socket, { op: 0, ...entry });
        this.dispatch('RESUMED', {});
        this.notifyReconnected();
        return;
      }
      default:
        return;
    }
  }

  private notifyReconnected(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve();
  }

  private send(socket: WebSocket, payload: Record<string, unknown>): void {
    socket.send(JSON.stringify({ s: null, t: null, ...payload }));
  }
}
