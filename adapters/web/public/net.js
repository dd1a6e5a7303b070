// Talking to the server: JSON requests, and following a turn to its end
// (Server-Sent Events, falling back to polling).

export async function getJson(url) {
  const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(body?.error?.message || `The server answered ${response.status}.`), { body });
  return body;
}

function isFinal(view) {
  return view.state === 'done' || view.state === 'error';
}

export function follow(turnId, onView) {
  return new Promise((resolve) => {
    let finished = false;
    const finish = (view) => {
      if (finished) return;
      finished = true;
      resolve(view);
    };
    const poll = async (failures = 0) => {
      try {
        const view = await getJson(`/api/turns/${turnId}`);
        onView(view);
        if (isFinal(view)) return finish(view);
        setTimeout(() => poll(0), 1000);
      } catch (error) {
        if (error.body?.error || failures >= 5) {
          return finish({ state: 'error', error: error.body?.error || { message: 'Lost contact with the server. Is it still running?' } });
        }
        setTimeout(() => poll(failures + 1), 1000 * (failures + 1));
      }
    };
    if (!('EventSource' in window)) return poll();
    const events = new EventSource(`/api/turns/${turnId}/events`);
    events.addEventListener('state', (event) => {
      const view = JSON.parse(event.data);
      onView(view);
      if (isFinal(view)) {
        events.close();
        finish(view);
      }
    });
    events.onerror = () => {
      events.close();
      if (!finished) poll();
    };
  });
}
