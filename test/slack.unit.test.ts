/** The Slack adapter's translation helpers, and the manifest it ships. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SLASH_COMMAND } from '../adapters/slack/app.js';
import { imageRefFromFile, orderFiles } from '../adapters/slack/files.js';
import { escapeMrkdwn, findLinks, mentions, plainText } from '../adapters/slack/text.js';

const access = { botToken: 'xoxb-secret', fileHosts: ['files.slack.com'] };

describe('slack text', () => {
  it('turns Slack markup into the question', () => {
    expect(plainText('<@UBOT> what is <@U123|bob> holding in <#C1|general>?', 'UBOT')).toBe('what is @bob holding in #general?');
    expect(plainText('<@UBOT>   is it &lt;safe&gt; &amp; sound? <https://x.test/a|this>', 'UBOT')).toBe('is it <safe> & sound? this');
    expect(plainText('<!here> look', 'UBOT')).toBe('@here look');
  });

  it('escapes what Slack asks apps to escape', () => {
    expect(escapeMrkdwn('a < b & c > d')).toBe('a &lt; b &amp; c &gt; d');
  });

  it('finds mentions and links', () => {
    expect(mentions('hi <@UBOT>', 'UBOT')).toBe(true);
    expect(mentions('hi <@UBOT|lisa>', 'UBOT')).toBe(true);
    expect(mentions('hi <@UOTHER>', 'UBOT')).toBe(false);
    expect(findLinks('see <https://a.slack.com/files/U1/F1/x.png|x.png> and https://files.slack.com/y.png now').map((l) => l.url)).toEqual([
      'https://a.slack.com/files/U1/F1/x.png',
      'https://files.slack.com/y.png',
    ]);
  });
});

describe('slack files', () => {
  it('adds the bot token only for a URL on an allowed file host', () => {
    const trusted = imageRefFromFile({ id: 'F1', url_private_download: 'https://files.slack.com/files-pri/T-F1/download/a.png', mimetype: 'image/png', size: 10, original_w: 4, original_h: 3 }, access);
    expect(trusted).toMatchObject({
      kind: 'url',
      headers: { Authorization: 'Bearer xoxb-secret' },
      allowedHosts: ['files.slack.com'],
      declared: { size: 10, contentType: 'image/png', width: 4, height: 3 },
    });
    expect(trusted && 'notImageHint' in trusted && trusted.notImageHint).toContain('files:read');

    for (const url of ['https://evil.example/a.png', 'https://files.slack.com.evil.example/a.png', 'ftp://files.slack.com/a.png', 'not a url']) {
      const ref = imageRefFromFile({ id: 'F2', url_private: url }, access);
      expect(ref).not.toHaveProperty('headers');
    }
    expect(imageRefFromFile({ id: 'F3' }, access)).toBeUndefined();
  });

  it('puts images first', () => {
    const files = orderFiles([{ id: 'pdf', mimetype: 'application/pdf' }, { id: 'img', mimetype: 'image/jpeg' }]);
    expect(files.map((f) => f.id)).toEqual(['img', 'pdf']);
  });
});

describe('slack manifest', () => {
  const manifest = parse(readFileSync(new URL('../config/slack-manifest.yaml', import.meta.url), 'utf8'));

  it('has the scopes, the command and the events the adapter uses, in Socket Mode', () => {
    expect(manifest.oauth_config.scopes.bot).toEqual(
      expect.arrayContaining(['app_mentions:read', 'chat:write', 'commands', 'files:read', 'files:write', 'channels:history', 'groups:history']),
    );
    expect(manifest.features.slash_commands.map((c: { command: string }) => c.command)).toEqual([SLASH_COMMAND]);
    expect(manifest.settings.event_subscriptions.bot_events).toEqual(expect.arrayContaining(['app_mention', 'message.channels', 'message.groups']));
    expect(manifest.settings.socket_mode_enabled).toBe(true);
    expect(manifest.features.bot_user.display_name).toBeTruthy();
  });
});
