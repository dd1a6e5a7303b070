/** The image formats an overlay can be encoded in: the config's render.format, the CLI's --format, each surface's choice. */
export const overlayFormats = ['png', 'jpeg', 'webp'] as const;

export type OverlayFormat = (typeof overlayFormats)[number];
