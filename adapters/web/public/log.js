// The conversation log: one list item per turn, the question and then its
// progress, answer (text, overlay, legend) or error. Text only ever goes in as
// text nodes, never as HTML.

const log = document.getElementById('log');

export function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'className') node.className = value;
    else if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

export function formatBytes(n) {
  if (n >= 1e6) return `${+(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${+(n / 1e3).toFixed(1)} KB`;
  return `${n} bytes`;
}

export function addTurn(question, file, fileUrl) {
  const user = el('div', { className: 'msg user' }, [el('p', { className: 'question', text: question })]);
  if (file) {
    const name = file.name || 'pasted image';
    const thumb = el('img', { className: 'thumb', src: fileUrl, alt: `Your image: ${name}` });
    // A file the browser cannot show (the server will say why) is named instead of drawn as a broken image.
    thumb.addEventListener('error', () => thumb.replaceWith(el('p', { className: 'attachment', text: `Attached: ${name}` })));
    user.append(thumb);
  }
  const status = el('p', { className: 'status', text: 'Sending…' });
  const bot = el('div', { className: 'msg bot', 'aria-busy': 'true' }, [status]);
  const item = el('li', { className: 'turn' }, [user, bot]);
  log.append(item);
  item.scrollIntoView({ block: 'end', behavior: 'smooth' });
  return { item, bot, status, question };
}

/** Whether the user is reading the newest messages (so new content may scroll into view). */
function nearBottom() {
  return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 200;
}

export function showProgress(turn, view) {
  if (view.state === 'queued') {
    turn.status.textContent = view.position ? `Queued — position ${view.position}` : 'Queued…';
  } else if (view.state === 'working') {
    turn.status.textContent = 'Working…';
  }
}

export function showError(turn, error) {
  turn.bot.setAttribute('aria-busy', 'false');
  turn.bot.classList.add('failed');
  turn.status.replaceWith(
    el('p', { className: 'error', role: 'alert' }, [el('strong', { text: 'Could not answer: ' }), error.message || 'unknown error']),
  );
}

/** The answer, each mask's marker (in order) wrapped so it names its mask on hover and to screen readers. */
function answerText(reply) {
  const p = el('p', { className: 'answer' });
  let rest = reply.text;
  for (const s of reply.segments) {
    const at = rest.indexOf(s.colour.emoji);
    if (at < 0) continue;
    const label = `mask ${s.index + 1} (drawn in ${s.colour.name})`;
    // Drawn as a square of the mask's exact colour (emoji fonts differ, some machines have none); the emoji stays for copying.
    const marker = el('span', { className: 'marker swatch', role: 'img', 'aria-label': label, title: label }, [
      el('span', { className: 'visually-hidden', text: s.colour.emoji }),
    ]);
    marker.style.backgroundColor = s.colour.hex;
    p.append(rest.slice(0, at), marker);
    rest = rest.slice(at + s.colour.emoji.length);
  }
  p.append(rest);
  return p;
}

export function showReply(turn, reply) {
  turn.bot.setAttribute('aria-busy', 'false');
  // Decided once: a reader at the newest message keeps following it as the answer (and its image) grows.
  const follow = nearBottom();
  const parts = [answerText(reply)];
  if (reply.overlayUrl) {
    const masks = reply.segments.filter((s) => !s.empty).map((s) => `mask ${s.index + 1} drawn in ${s.colour.name}`);
    const alt = `The image with the answer's ${masks.length === 1 ? 'mask' : 'masks'} drawn over it` +
      (masks.length ? `: ${masks.join(', ')}` : ' (no mask found anything)');
    const img = el('img', { className: 'overlay', src: reply.overlayUrl, alt });
    img.addEventListener('load', () => {
      // Small images are drawn larger: keep their pixels crisp instead of blurred.
      if (img.naturalWidth < img.clientWidth) img.classList.add('pixelated');
      if (follow) turn.item.scrollIntoView({ block: 'end' });
    });
    const legend = el('ul', { className: 'legend', 'aria-label': 'Masks' });
    for (const s of reply.segments) {
      const what = s.empty ? 'empty: it points at nothing visible' : `${s.area.toLocaleString()} px`;
      const swatch = el('span', { className: 'swatch', 'aria-hidden': 'true' });
      swatch.style.backgroundColor = s.colour.hex;
      legend.append(el('li', {}, [swatch, `mask ${s.index + 1} (drawn in ${s.colour.name}) — ${what}`]));
    }
    const link = el('a', { href: reply.overlayUrl, target: '_blank', rel: 'noopener', text: 'Open full size' });
    parts.push(el('figure', { className: 'overlay-figure' }, [img, el('figcaption', {}, [legend, link])]));
  }
  turn.status.replaceWith(...parts);
  if (follow) turn.item.scrollIntoView({ block: 'end' });
}
