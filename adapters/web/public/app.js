// The LISA web chat page: vanilla JS modules, no build step, same-origin requests only.
import { follow, getJson } from './net.js';
import { addTurn, el, formatBytes, showError, showProgress, showReply } from './log.js';

const $ = (id) => document.getElementById(id);
const els = {
  modelName: $('model-name'),
  banner: $('demo-banner'),
  intro: $('intro'),
  log: $('log'),
  form: $('composer'),
  dropzone: $('dropzone'),
  input: $('image-input'),
  dropText: $('drop-text'),
  currentImage: $('current-image'),
  preview: $('preview'),
  previewImg: $('preview-img'),
  previewName: $('preview-name'),
  remove: $('remove-image'),
  question: $('question'),
  send: $('send'),
  error: $('composer-error'),
  reset: $('new-conversation'),
};

const state = {
  file: null,
  fileUrl: null,
  hasImage: false,
  /** A small copy of the image a follow-up without one is about. */
  currentImageUrl: null,
  /** The server's instance: one that changed while a turn waited means the turn was lost in a restart. */
  instance: null,
  busy: false,
  limits: { maxImageBytes: Infinity, maxQuestionChars: Infinity },
  objectUrls: [],
};

const TOY_COLOURS = 'red, green, blue, yellow, purple and orange';

// ---- start-up ---------------------------------------------------------------

async function loadModel() {
  try {
    const model = await getJson('/api/model');
    els.modelName.textContent = model.name;
    if (model.demo) {
      const palette = /toy/i.test(model.name) ? ` It only finds the six palette colours (${TOY_COLOURS}) in flat-colour images.` : '';
      showBanner(`“${model.name}” is not LISA, only a tiny test model.${palette}`);
    }
  } catch {
    els.modelName.textContent = 'unknown (the server did not answer)';
  }
}

function showBanner(text) {
  els.banner.textContent = '';
  els.banner.append(el('strong', { text: 'Demo model: ' }), text.replace(/^Demo model[:.]?\s*/, ''));
  els.banner.hidden = false;
}

async function refreshConversation({ showStored = false } = {}) {
  try {
    const info = await getJson('/api/conversation');
    state.hasImage = Boolean(info.hasImage);
    state.currentImageUrl = info.currentImageUrl || null;
    state.instance = info.instance || null;
    if (info.limits) state.limits = info.limits;
    // After a reload the log is empty but the conversation is not: show it as it was.
    if (showStored && els.log.children.length === 0) {
      for (const past of info.turns || []) {
        const turn = addTurn(past.question, past.imageUrl ? { name: 'the image' } : null, past.imageUrl);
        showReply(turn, past.reply);
      }
    }
  } catch {
    // Keep what we knew; the next turn will say what is wrong.
  }
  updateComposer();
}

// ---- the image picker -------------------------------------------------------

function setFile(file) {
  clearFile();
  if (!file) return;
  if (file.size > state.limits.maxImageBytes) {
    showComposerError(`That image is ${formatBytes(file.size)}; the limit is ${formatBytes(state.limits.maxImageBytes)}.`);
    return;
  }
  state.file = file;
  state.fileUrl = URL.createObjectURL(file);
  els.previewImg.src = state.fileUrl;
  els.previewImg.alt = `Preview of ${file.name || 'the image'}`;
  els.previewName.textContent = file.name || 'pasted image';
  els.preview.hidden = false;
  showComposerError('');
  updateComposer();
}

function clearFile() {
  if (state.fileUrl && !state.objectUrls.includes(state.fileUrl)) URL.revokeObjectURL(state.fileUrl);
  state.file = null;
  state.fileUrl = null;
  els.input.value = '';
  els.previewImg.removeAttribute('src');
  els.preview.hidden = true;
  updateComposer();
}

function updateComposer() {
  els.dropText.textContent = '';
  const link = el('span', { className: 'link', text: 'choose a file' });
  const showCurrent = !state.file && state.hasImage && state.currentImageUrl;
  if (state.file) els.dropText.append('Drop or ', el('span', { className: 'link', text: 'choose' }), ' another image to replace this one');
  else if (state.hasImage) els.dropText.append(`Asking about ${showCurrent ? 'this' : 'the current'} image. Drop or `, link, ' to start on a new one');
  else els.dropText.append('Drop an image here, or ', link);
  els.currentImage.hidden = !showCurrent;
  if (showCurrent && els.currentImage.getAttribute('src') !== state.currentImageUrl) els.currentImage.src = state.currentImageUrl;
  els.question.placeholder = state.file || !state.hasImage ? 'Ask about the image…' : 'Ask a follow-up about the same image…';
  els.send.disabled = state.busy;
  els.intro.hidden = els.log.children.length > 0;
}

function showComposerError(message) {
  els.error.textContent = message;
}

// ---- sending ----------------------------------------------------------------

async function send() {
  if (state.busy) return;
  const question = els.question.value.trim();
  if (!question) {
    showComposerError('Type a question first.');
    els.question.focus();
    return;
  }
  // In characters, as the server counts (a maxlength attribute would count UTF-16 units: an emoji as two).
  const chars = [...question].length;
  if (chars > state.limits.maxQuestionChars) {
    showComposerError(`The question is too long: the limit is ${state.limits.maxQuestionChars.toLocaleString('en-US')} characters (this one has ${chars.toLocaleString('en-US')}). Please shorten it.`);
    return;
  }
  if (!state.file && !state.hasImage) {
    showComposerError('Add an image first: drop one above, choose a file, or paste one.');
    return;
  }
  showComposerError('');
  const file = state.file;
  const fileUrl = state.fileUrl;
  const body = new FormData();
  body.append('question', question);
  if (file) body.append('image', file, file.name || 'image');

  state.busy = true;
  if (file) state.objectUrls.push(fileUrl);
  const turn = addTurn(question, file, fileUrl);
  updateComposer();
  els.question.value = '';
  // The sent image's URL now belongs to the log (objectUrls), so clearing the picker keeps it alive.
  if (file) clearFile();
  try {
    const response = await fetch('/api/turns', { method: 'POST', body, credentials: 'same-origin' });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      showError(turn, answer.error || { message: `The server answered ${response.status}.` });
      if (file) restoreFile(file);
      return;
    }
    const view = await follow(answer.turnId, (v) => showProgress(turn, v));
    if (view.state === 'done') {
      showReply(turn, view.reply);
      if (view.reply.demoNotice && els.banner.hidden) showBanner(view.reply.demoNotice);
    } else if (await restartedSince(answer.instance, view)) {
      showError(turn, { message: 'The server restarted before answering, so this question was lost. It is back in the box below: send it again.' });
      if (!els.question.value) els.question.value = question;
      if (file) restoreFile(file);
    } else {
      showError(turn, view.error || {});
    }
  } catch {
    showError(turn, { message: 'Could not reach the server. Is it still running?' });
  } finally {
    state.busy = false;
    await refreshConversation();
    els.question.focus();
  }
}

/** Whether a turn that vanished (no such turn, or no contact) was lost because the server restarted since it took it. */
async function restartedSince(instance, view) {
  const code = view.error?.code;
  if (!instance || (code && code !== 'not_found')) return false;
  try {
    const info = await getJson('/api/conversation');
    return Boolean(info.instance) && info.instance !== instance;
  } catch {
    return false;
  }
}

/** After a refusal, the image goes back into the picker so the user can fix the question and resend. */
function restoreFile(file) {
  if (!state.file) setFile(file);
}

async function newConversation() {
  try {
    await fetch('/api/conversation/reset', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: '{}',
    });
  } catch {
    showComposerError('Could not reach the server to start a new conversation.');
    return;
  }
  els.log.textContent = '';
  for (const url of state.objectUrls.splice(0)) URL.revokeObjectURL(url);
  clearFile();
  showComposerError('');
  state.busy = false;
  await refreshConversation();
  els.question.focus();
}

// ---- wiring -----------------------------------------------------------------

els.form.addEventListener('submit', (event) => {
  event.preventDefault();
  send();
});
els.question.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});
els.input.addEventListener('change', () => setFile(els.input.files[0] || null));
els.remove.addEventListener('click', () => {
  clearFile();
  els.input.focus();
});
els.reset.addEventListener('click', newConversation);

for (const type of ['dragenter', 'dragover']) {
  els.dropzone.addEventListener(type, (event) => {
    event.preventDefault();
    els.dropzone.classList.add('dragging');
  });
}
for (const type of ['dragleave', 'drop']) {
  els.dropzone.addEventListener(type, () => els.dropzone.classList.remove('dragging'));
}
els.dropzone.addEventListener('drop', (event) => {
  event.preventDefault();
  const file = event.dataTransfer?.files?.[0];
  if (file) setFile(file);
});
// A drop that misses the zone must not navigate away from the chat.
window.addEventListener('dragover', (event) => event.preventDefault());
window.addEventListener('drop', (event) => event.preventDefault());
document.addEventListener('paste', (event) => {
  const file = [...(event.clipboardData?.files || [])].find((f) => f.type.startsWith('image/'));
  if (file) {
    event.preventDefault();
    setFile(file);
  }
});

loadModel();
refreshConversation({ showStored: true });
