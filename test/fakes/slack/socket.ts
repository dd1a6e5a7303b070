/**
 * Socket Mode on top of FakeSlack: apps.connections.open answers a ws:// URL
 * on the same server, which says hello and then pushes envelopes; the acks the
 * app sends back are recorded.
 */
import { WebSocketServer, type WebSocket } from 'ws';
import type { FakeSlack } from './server.js';

export class FakeSocketMode {
  readonly acks: { envelope_id: string; payload?: unknown }[] = [];
  private readonly wss = new WebSocketServer({ noServer: true });
  private socket: WebSocket | undefined;
  private seq = 0;

  constructor(fake: FakeSlack) {
    fake.socketUrl = `ws://127.0.0.1:${fake.port}/link/?ticket=test-ticket`;
    fake.http.on('upgrade', (req, sock, head) => {
      if (!req.url?.startsWith('/link')) return void sock.destroy();
      this.wss.handleUpgrade(req, sock, head, (ws) => {
        this.socket = ws;
        ws.on('message', (data) => this.acks.push(JSON.parse(String(data)) as { envelope_id: string }));
        ws.send(JSON.stringify({ type: 'hello', num_connections: 1, debug_info: { host: 'fake' }, connection_info: { app_id: 'A0APP0001' } }));
      });
    });
  }

  get connected(): boolean {
    return this.socket !== undefined && this.socket.readyState === this.socket.OPEN;
  }

  /** Pushes an Events API payload; returns its envelope id. */
  sendEvent(payload: Record<string, unknown>): string {
    if (!this.socket) throw new Error('no Socket Mode client connected');
    const envelopeId = `env-${++this.seq}`;
    this.socket.send(JSON.stringify({ envelope_id: envelopeId, type: 'events_api', accepts_response_payload: false, retry_attempt: 0, retry_reason: '', payload }));
    return envelopeId;
  }

  close(): void {
    for (const client of this.wss.clients) client.terminate();
    this.wss.close();
  }
}
