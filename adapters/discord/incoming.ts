/**
 * From Discord to the assistant's IncomingTurn: the question without the bot's
 * mention, the user, and the image as a URL on Discord's CDN, checked against
 * the limits from what Discord declares (type, size, width x height) before
 * anything is downloaded.
 */
import { type Attachment, type Message, type User, cleanContent } from 'discord.js';
import type { ImageRef } from '../../src/assistant/types.js';
import type { Config } from '../../src/config/index.js';
import { UserInputError } from '../../src/errors.js';

/** How a Discord user gives an image, said when a conversation has none yet. */
export const NO_IMAGE_HINT = 'Attach an image (or reply to a message that has one) and ask again.';

export type AttachmentInfo = Pick<Attachment, 'url' | 'name' | 'size' | 'contentType' | 'width' | 'height'>;

/** Discord marks images with an image/* content type, and gives their size in pixels. */
export function isImageAttachment(attachment: AttachmentInfo): boolean {
  if (attachment.contentType) return attachment.contentType.toLowerCase().startsWith('image/');
  return /\.(png|jpe?g|webp|gif|tiff?|avif)$/i.test(attachment.name);
}

/**
 * The image of a set of attachments, checked; none when there are no
 * attachments. Throws UserInputError when none of them is an image, or the
 * image is over the size or pixel limit.
 */
export function imageRefs(attachments: Iterable<AttachmentInfo>, config: Config): ImageRef[] {
  const all = [...attachments];
  if (all.length === 0) return [];
  const image = all.find(isImageAttachment);
  if (!image) {
    const first = all[0];
    const type = first.contentType ? ` (${first.contentType})` : '';
    throw new UserInputError(
      `"${first.name}"${type} is not an image. Attach a picture (JPEG, PNG, WebP or GIF) and ask again.`,
      'image_unsupported',
    );
  }
  const { maxImageBytes, maxImagePixels } = config.limits;
  if (image.size > maxImageBytes) {
    throw new UserInputError(
      `"${image.name}" is ${megabytes(image.size)}; the limit is ${megabytes(maxImageBytes)}. Send a smaller image.`,
      'image_too_large',
    );
  }
  if (image.width && image.height && image.width * image.height > maxImagePixels) {
    throw new UserInputError(
      `"${image.name}" is ${image.width}x${image.height} pixels; the limit is ${megapixels(maxImagePixels)} megapixels. ` +
        'Send a smaller image.',
      'image_too_many_pixels',
    );
  }
  return [
    {
      kind: 'url',
      url: image.url,
      allowedHosts: config.discord.attachmentHosts,
      declared: {
        size: image.size,
        name: image.name,
        ...(image.contentType ? { contentType: image.contentType } : {}),
        ...(image.width ? { width: image.width } : {}),
        ...(image.height ? { height: image.height } : {}),
      },
    },
  ];
}

/** True when the message mentions the bot: its user, or the role Discord made for it. */
export function mentionsBot(message: Message, botId: string): boolean {
  if (message.mentions.users.has(botId)) return true;
  return message.mentions.roles.some((role) => role.tags?.botId === botId);
}

/** The question: the message text without the bot's mentions, other mentions as readable names. */
export function questionOf(message: Message, botId: string): string {
  const roleIds = message.mentions.roles.filter((role) => role.tags?.botId === botId).map((role) => role.id);
  let text = message.content.replace(new RegExp(`<@!?${botId}>`, 'g'), ' ');
  for (const id of roleIds) text = text.replaceAll(`<@&${id}>`, ' ');
  return cleanContent(text, message.channel).replace(/[ \t]+/g, ' ').trim();
}

export function turnUser(user: User): { id: string; name: string } {
  return { id: user.id, name: user.displayName };
}

function megabytes(bytes: number): string {
  return `${(bytes / 1_000_000).toFixed(bytes < 10_000_000 ? 1 : 0)} MB`;
}

function megapixels(pixels: number): string {
  return (pixels / 1_000_000).toFixed(pixels % 1_000_000 === 0 ? 0 : 1);
}
