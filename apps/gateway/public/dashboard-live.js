// The dashboard's live link: one EventSource on /api/events (the node's events as the
// gateway streams them) and coalesced refreshes of what only /api knows. No timers:
// EventSource reconnects by itself, and every (re)connection reloads the starting state.
(function () {
  'use strict';

  // Runs fn now, or once more right after the run in progress: never two at once.
  function coalesced(fn) {
    let busy = false;
    let again = false;
    return function run() {
      if (busy) { again = true; return; }
      busy = true;
      Promise.resolve().then(fn).catch((err) => console.warn(err)).finally(() => {
        busy = false;
        if (again) { again = false; run(); }
      });
    };
  }

  // handlers: { open(), closed(), [event name]: (data) => void }
  function follow(handlers) {
    const es = new EventSource('/api/events');
    es.addEventListener('open', () => handlers.open());
    es.addEventListener('error', () => handlers.closed(es.readyState === EventSource.CLOSED));
    for (const [name, fn] of Object.entries(handlers)) {
      if (name === 'open' || name === 'closed') continue;
      es.addEventListener(name, (ev) => {
        let data;
        try { data = JSON.parse(ev.data); } catch (err) { console.warn('unreadable event', name, err); return; }
        fn(data);
      });
    }
    return es;
  }

  window.hivemindLive = { coalesced, follow };
})();
