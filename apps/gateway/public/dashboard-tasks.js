// The dashboard's task tables: running tasks and the history, from /api/tasks with what
// the task events said since (a start not listed yet, an end not uploaded yet).
(function () {
  'use strict';
  const { $, fmtTime, fmtBytes, fmtNum, fmtSecs, el, emptyRow } = window.hivemindUi;

  function render(state, on) {
    const t = state.tasks;
    const running = t.running.filter((r) => !state.ended.has(r.taskId));
    for (const [id, e] of state.started) if (!running.some((r) => r.taskId === id)) running.push({ taskId: id, startedAt: e.startedAt, executorId: e.executorId });
    const body = $('running-tasks');
    body.replaceChildren();
    for (const r of running) {
      const tr = el('tr', { 'data-task-id': r.taskId });
      tr.append(el('td', {}, r.taskId), el('td', {}, fmtTime(r.startedAt)), el('td', {}, fmtNum(r.cpuPercent)), el('td', {}, fmtNum(r.memoryPercent)), el('td', {}, r.executorId));
      tr.addEventListener('click', () => on.selectRunning(r.taskId));
      if (r.taskId === state.selectedRunning) tr.classList.add('selected');
      body.append(tr);
    }
    if (!running.length) body.append(emptyRow(5, 'None'));
    if (running.length && !running.some((r) => r.taskId === state.selectedRunning)) on.selectRunning(running[0].taskId);

    const hist = $('history-tasks');
    hist.replaceChildren();
    // Ended, its result queued for upload: what the executor's event said, until the history lists it.
    for (const e of [...state.ended.values()].reverse()) {
      const tr = el('tr', { 'data-task-id': e.taskId });
      tr.append(el('td', {}, e.taskId), el('td', { class: 'status-' + e.status }, e.status), el('td', {}, e.reason), el('td', {}, fmtSecs((e.finishedAt - e.startedAt) / 1000)),
        el('td', {}, '–'), el('td', {}, '–'), el('td', {}, fmtTime(e.finishedAt)), el('td', {}, 'waiting for upload'));
      tr.addEventListener('click', () => on.selectHistory(e.taskId));
      hist.append(tr);
    }
    // Results the pool refused: their slots are free, the node still retries them slowly.
    for (const r of t.refused || []) {
      const tr = el('tr', { 'data-task-id': r.taskId, class: 'refused' });
      tr.append(el('td', {}, r.taskId), el('td', { class: 'status-' + (r.status || '') }, r.status || '–'), el('td', {}, r.reason || ''), el('td', {}, '–'),
        el('td', {}, '–'), el('td', {}, '–'), el('td', {}, '–'),
        el('td', { class: 'upload-refused', title: 'The pool said: ' + r.message + ' (' + r.refusals + ' refusals; next try ' + fmtTime(r.nextAt) + ')' },
          'refused by the pool, retrying until ' + new Date(r.until).toLocaleString()));
      hist.append(tr);
    }
    for (const h of t.history) {
      const tr = el('tr', { 'data-task-id': h.taskId });
      const givenUp = h.delivery === 'given_up';
      const upload = givenUp ? 'given up: refused by the pool' : h.refused ? 'uploaded after ' + h.refused.refusals + ' refusals' : 'uploaded';
      tr.append(el('td', {}, h.taskId), el('td', { class: 'status-' + h.status }, h.status), el('td', {}, h.reason), el('td', {}, fmtSecs(h.durationSeconds)),
        el('td', {}, fmtBytes(h.resultBytes)), el('td', { title: h.cptExplained }, fmtNum(h.cpt.total)), el('td', {}, fmtTime(h.uploadedAt || h.finishedAt)),
        el('td', { class: givenUp ? 'upload-given-up' : '', title: h.refused ? 'The pool said: ' + h.refused.message : '' }, upload));
      tr.addEventListener('click', () => on.selectHistory(h.taskId));
      if (h.taskId === state.selectedHistory) tr.classList.add('selected');
      hist.append(tr);
    }
    if (!hist.children.length) hist.append(emptyRow(8, 'None yet'));
  }

  window.hivemindTasks = { render };
})();
