// The HiveMind worker dashboard: plain JS, no build step. Polls the gateway's API,
// follows live output over Server-Sent Events, draws the monitor's history with uPlot.
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const state = { selectedRunning: null, selectedHistory: null, outputs: new Map(), charts: {} };
  const MAX_OUTPUT_CHARS = 200000;

  async function api(path, opts) {
    const res = await fetch(path, Object.assign({ credentials: 'same-origin', headers: { 'Content-Type': 'application/json' } }, opts || {}));
    if (res.status === 401) { location.href = '/login'; throw new Error('not logged in'); }
    const type = res.headers.get('content-type') || '';
    const body = type.includes('json') ? await res.json() : await res.text();
    if (!res.ok) { const err = new Error((body && body.message) || res.statusText); err.body = body; throw err; }
    return body;
  }

  const fmtTime = (ms) => (ms ? new Date(ms).toLocaleTimeString() : '–');
  const fmtBytes = (b) => (b >= 1048576 ? (b / 1048576).toFixed(1) + ' MB' : b >= 1024 ? (b / 1024).toFixed(1) + ' KB' : b + ' B');
  // Figures as a person reads them: whole numbers from 10 up, one decimal below (as roundForPeople in node-summary.ts).
  const fmtNum = (n) => (!Number.isFinite(n) ? '–' : String(Math.abs(n) >= 10 ? Math.round(n) : Math.round(n * 10) / 10));
  const fmtSecs = (s) => (s >= 3600 ? (s / 3600).toFixed(1) + ' h' : s >= 60 ? (s / 60).toFixed(1) + ' min' : s.toFixed(1) + ' s');
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function facts(dl, rows) {
    dl.replaceChildren();
    for (const [k, v] of rows) { dl.append(el('dt', {}, k), el('dd', {}, v)); }
  }
  function emptyRow(cols, text) { const tr = el('tr', { class: 'empty' }); tr.append(el('td', { colspan: String(cols) }, text)); return tr; }
  function badge(node, text, kind) { node.textContent = text; node.className = 'badge ' + (kind || ''); }

  // ---- status, settings, CPT, owner, problems
  let settingsLoaded = false;
  async function refreshStatus() {
    const s = await api('/api/status');
    $('node-id').textContent = s.node.nodeId;
    badge($('node-status'), s.summary.text, s.summary.tone);
    $('pool-status').textContent = 'pool sees: ' + s.status;
    badge($('pool-state'), s.pool.connected ? 'Pool connected' : s.pool.loggedIn ? 'Pool: no recent heartbeat' : 'Pool: not logged in', s.pool.connected ? 'ok' : 'bad');
    facts($('node-facts'), [
      ['Node id', s.node.nodeId],
      ['Reachable at', s.node.advertise],
      ['Node Pool', s.pool.address + (s.pool.lastHeartbeatOk ? ' (last heartbeat ' + fmtTime(s.pool.lastHeartbeatOk) + ')' : '')],
      ['Tasks held', String(s.heldTasks) + ' of ' + s.capacity.maxTasks],
      ['Offered to tasks', s.capacity.cpuCores + ' cores, ' + s.capacity.memoryGb + ' GB'],
      ['Executors', s.executors.map((e) => e.executorId + ' (' + e.runtime + ', ' + e.running + '/' + e.concurrency + ')').join(', ') || 'none'],
      ['Host now', s.host ? 'CPU ' + fmtNum(s.host.cpuPercent) + ' %, memory ' + fmtNum(s.host.memoryPercent) + ' %, disk ' + fmtNum(s.host.diskPercent) + ' %' : 'no sample'],
    ]);
    $('cpt-balance').textContent = s.cpt.balance === null ? 'not fetched yet' : String(s.cpt.balance);
    $('cpt-estimated').textContent = fmtNum(s.cpt.estimatedTotal) + ' CPT over ' + s.cpt.estimatedTasks + ' task(s)';
    $('accepting').textContent = s.paused ? 'no (paused)' : s.draining ? 'no (shutting down)' : 'yes';
    $('pause-btn').disabled = s.paused; $('resume-btn').disabled = !s.paused;
    if (s.ownerState) {
      $('owner').hidden = false;
      const o = s.ownerState;
      facts($('owner-facts'), [
        ['Owner busy', o.busy ? 'yes' : 'no'], ['Owner CPU', fmtNum(o.ownerCpuPercent) + ' %'], ['Since', o.since ? fmtTime(o.since) : '–'],
        ['Why', o.reason || '–'], ['Frozen tasks', (o.frozenTasks || []).join(', ') || 'none'], ['Schedule open', o.scheduleOpen ? 'yes' : 'no'],
      ]);
    } else $('owner').hidden = true;
    if (!settingsLoaded) {
      const f = $('settings-form');
      for (const k of ['maxConcurrentTasks', 'ownerReservedCores', 'ownerReservedMemoryGb']) f.elements[k].value = s.settings[k];
      settingsLoaded = true;
    }
    const problems = [];
    if (s.pool.lastError) problems.push({ level: 'warn', time: s.pool.lastErrorAt, msg: 'Node Pool call failed', detail: s.pool.lastError });
    if (!s.executors.length) problems.push({ level: 'error', time: Date.now(), msg: 'no executor is running: the node cannot run tasks' });
    if (s.executors.length && !s.executors.some((e) => e.docker === 'available')) problems.push({ level: 'warn', time: Date.now(), msg: 'Docker is not available to any executor' });
    const list = $('problem-list');
    list.replaceChildren();
    for (const p of problems.concat(s.problems)) {
      list.append(el('li', { class: p.level }, fmtTime(p.time) + ' ' + p.level + ': ' + p.msg + (p.detail ? ' (' + p.detail + ')' : '') + (p.taskId ? ' [task ' + p.taskId + ']' : '')));
    }
    if (!list.children.length) list.append(el('li', { class: 'empty' }, 'None'));
  }

  $('pause-btn').addEventListener('click', () => api('/api/pause', { method: 'POST' }).then(refreshStatus).catch(showError));
  $('resume-btn').addEventListener('click', () => api('/api/resume', { method: 'POST' }).then(refreshStatus).catch(showError));
  $('settings-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const body = {};
    for (const k of ['maxConcurrentTasks', 'ownerReservedCores', 'ownerReservedMemoryGb']) body[k] = Number(f.elements[k].value);
    const msg = $('settings-msg');
    try {
      await api('/api/settings', { method: 'PATCH', body: JSON.stringify(body) });
      msg.textContent = 'Saved; in effect now.'; msg.className = 'ok';
      await refreshStatus();
    } catch (err) {
      msg.textContent = err.message; msg.className = 'error';
    }
  });
  function showError(err) { const m = $('settings-msg'); m.textContent = err.message; m.className = 'error'; }

  // ---- tasks
  async function refreshTasks() {
    const t = await api('/api/tasks');
    const body = $('running-tasks');
    body.replaceChildren();
    for (const r of t.running) {
      const tr = el('tr', { 'data-task-id': r.taskId });
      tr.append(el('td', {}, r.taskId), el('td', {}, fmtTime(r.startedAt)), el('td', {}, fmtNum(r.cpuPercent)), el('td', {}, fmtNum(r.memoryPercent)), el('td', {}, r.executorId));
      tr.addEventListener('click', () => selectRunning(r.taskId));
      if (r.taskId === state.selectedRunning) tr.classList.add('selected');
      body.append(tr);
    }
    if (!t.running.length) body.append(emptyRow(5, 'None'));
    if (t.running.length && !t.running.some((r) => r.taskId === state.selectedRunning)) selectRunning(t.running[0].taskId);

    const hist = $('history-tasks');
    hist.replaceChildren();
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
      tr.addEventListener('click', () => selectHistory(h.taskId));
      if (h.taskId === state.selectedHistory) tr.classList.add('selected');
      hist.append(tr);
    }
    if (!t.history.length && !(t.refused || []).length) hist.append(emptyRow(8, 'None yet'));
  }

  async function selectRunning(taskId) {
    state.selectedRunning = taskId;
    $('live-task').textContent = taskId;
    // What the task printed before we looked: its live log; then the stream adds to it.
    try {
      const text = await api('/api/tasks/' + encodeURIComponent(taskId) + '/logs');
      const streamed = state.outputs.get(taskId) || '';
      state.outputs.set(taskId, text.length >= streamed.length ? text : streamed);
    } catch (_) { /* finished meanwhile */ }
    renderOutput();
  }
  function renderOutput() {
    const pre = $('live-output');
    const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
    pre.textContent = state.outputs.get(state.selectedRunning) || '';
    if (stick) pre.scrollTop = pre.scrollHeight;
  }
  async function selectHistory(taskId) {
    state.selectedHistory = taskId;
    $('history-task').textContent = taskId;
    try { $('history-logs').textContent = await api('/api/tasks/' + encodeURIComponent(taskId) + '/logs'); } catch (err) { $('history-logs').textContent = err.message; }
  }

  function followOutput() {
    const es = new EventSource('/api/output');
    es.addEventListener('output', (ev) => {
      const { taskId, text } = JSON.parse(ev.data);
      let buf = (state.outputs.get(taskId) || '') + text + '\n';
      if (buf.length > MAX_OUTPUT_CHARS) buf = buf.slice(buf.length - MAX_OUTPUT_CHARS);
      state.outputs.set(taskId, buf);
      if (!state.selectedRunning) selectRunning(taskId);
      else if (taskId === state.selectedRunning) renderOutput();
    });
  }

  // ---- charts
  function chart(id, series, yRange) {
    const node = $(id);
    const width = Math.max(300, node.clientWidth || 360);
    const opts = {
      width, height: 160,
      scales: { x: { time: true }, y: yRange ? { range: yRange } : {} },
      series: [{}].concat(series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5 }))),
      legend: { show: true },
    };
    return new uPlot(opts, [[]].concat(series.map(() => [])), node);
  }
  function initCharts() {
    state.charts.cpu = chart('chart-cpu', [{ label: 'CPU %', color: '#1971c2' }], [0, 100]);
    state.charts.memory = chart('chart-memory', [{ label: 'Memory %', color: '#2f9e44' }], [0, 100]);
    state.charts.disk = chart('chart-disk', [{ label: 'Disk %', color: '#e67700' }], [0, 100]);
    state.charts.net = chart('chart-net', [{ label: 'in KB/s', color: '#7048e8' }, { label: 'out KB/s', color: '#d6336c' }]);
    state.charts.gpu = chart('chart-gpu', [{ label: 'GPU %', color: '#0c8599' }], [0, 100]);
  }
  async function refreshCharts() {
    const { samples } = await api('/api/monitor/history?minutes=60');
    const x = samples.map((s) => s.at / 1000);
    state.charts.cpu.setData([x, samples.map((s) => s.cpuPercent)]);
    state.charts.memory.setData([x, samples.map((s) => s.memoryPercent)]);
    state.charts.disk.setData([x, samples.map((s) => s.diskPercent)]);
    state.charts.net.setData([x, samples.map((s) => s.netRxBytesPerSec / 1024), samples.map((s) => s.netTxBytesPerSec / 1024)]);
    state.charts.gpu.setData([x, samples.map((s) => (s.gpus && s.gpus[0] ? s.gpus[0].utilizationPercent : 0))]);
  }

  function every(ms, fn) {
    const run = () => fn().catch((err) => console.warn(err)).finally(() => setTimeout(run, ms));
    run();
  }
  initCharts();
  followOutput();
  every(2000, refreshStatus);
  every(2000, refreshTasks);
  every(10000, refreshCharts);
})();
