/**
 * Which conversation a Slack message belongs to. A thread is one:
 * `slack:<team>:<channel>:<thread parent ts>`; `/lisa` in a channel has the
 * channel's, `slack:<team>:<channel>:channel`.
 */
import { conversationKey } from '../../src/conversation/keys.js';
import type { SlackFile } from './files.js';

/** A message in a channel or thread, from an app_mention or a message event. */
export interface ThreadMessage {
  teamId: string;
  channel: string;
  ts: string;
  /** The thread's parent ts when the message is in a thread. */
  threadTs?: string;
  user: string;
  text: string;
  /** Undefined when the event carried no `files` field (then the message is fetched). */
  files?: SlackFile[];
}

function slackKey(teamId: string, channelId: string, threadTs: string): string {
  return conversationKey('slack', { teamId, channelId, threadTs });
}

/** Where the answer goes: the thread of the message, or the thread it is in. */
export function threadOf(message: ThreadMessage): string {
  return message.threadTs ?? message.ts;
}

export function threadKey(message: ThreadMessage): string {
  return slackKey(message.teamId, message.channel, threadOf(message));
}

/**
 * The conversation of `/lisa` in a channel. Thread keys end in a message ts
 * (digits and a dot), so the literal part `channel` can never collide with one.
 */
export function channelKey(teamId: string, channelId: string): string {
  return slackKey(teamId, channelId, 'channel');
}

/**
 * The most recent image this process saw in each channel: posted with a mention
 * (in the channel or any of its threads) and answered, or named in a `/lisa`.
 * `/lisa` without a file link sends it along, so the channel conversation
 * follows the newest image; the conversation itself (history, current image)
 * lives in the session store, so after a restart `/lisa` goes on with the
 * channel conversation's image until a new one is posted.
 */
export class ChannelImages {
  private readonly latestByChannel = new Map<string, SlackFile>();

  constructor(private readonly capacity = 5000) {}

  remember(teamId: string, channelId: string, file: SlackFile): void {
    const key = `${teamId}:${channelId}`;
    this.latestByChannel.delete(key);
    this.latestByChannel.set(key, file);
    if (this.latestByChannel.size > this.capacity) {
      const oldest = this.latestByChannel.keys().next().value;
      if (oldest !== undefined) this.latestByChannel.delete(oldest);
    }
  }

  latest(teamId: string, channelId: string): SlackFile | undefined {
    return this.latestByChannel.get(`${teamId}:${channelId}`);
  }
}
