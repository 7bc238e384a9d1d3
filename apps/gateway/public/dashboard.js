// The HiveMind worker dashboard: plain JS, no build step. Draws the starting state from
// the gateway's API, then follows the node's events and live output over Server-Sent
// Events (dashboard-live.js); the monitor's samples are drawn with uPlot.
(function () {
  'use strict';
  const state = { selectedRunning: null, selectedHistory: null, outputs: new Map(), status: null, health: null, samples: [],
    tasks: { running: [], refused: [], history: [] }, started: new Map(), ended: new Map() };
  const HOUR_MS = 3600000;
  const MAX_OUTPUT_CHARS = 200000;

  const { $, api, fmtTime, fmtNum, el, facts, badge } = window.hivemindUi;

  // ---- status, settings, CPT, owner, problems
  let settingsLoaded = false;
  async function refreshStatus() {
    const s = await api('/api/status');
    state.status = s;
    $('node-id').textContent = s.node.nodeId;
    badge($('node-status'), s.summary.text, s.summary.tone);
    $('pool-status').textContent = 'pool sees: ' + s.status;
    badge($('pool-state'), s.pool.connected ? 'Pool connected' : s.pool.loggedIn ? 'Pool: no recent heartbeat' : 'Pool: not logged in', s.pool.connected ? 'ok' : 'bad');
    renderFacts();
    $('cpt-balance').textContent = s.cpt.balance === null ? 'not fetched yet' : String(s.cpt.balance);
    $('cpt-estimated').textContent = fmtNum(s.cpt.estimatedTotal) + ' CPT over ' + s.cpt.estimatedTasks + ' task(s)';
    $('accepting').textContent = s.paused ? 'no (paused)' : s.draining ? 'no (shutting down)' : 'yes';
    $('pause-btn').disabled = s.paused; $('resume-btn').disabled = !s.paused;
    renderOwner(s.ownerState);
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
  // The node's facts: from /api/status, with the newest host sample and monitor health from the events.
  function renderFacts() {
    const s = state.status;
    if (!s) return;
    const host = state.samples.length ? state.samples[state.samples.length - 1] : s.host;
    const h = state.health;
    facts($('node-facts'), [
      ['Node id', s.node.nodeId],
      ['Reachable at', s.node.advertise],
      ['Node Pool', s.pool.address + (s.pool.lastHeartbeatOk ? ' (last heartbeat ' + fmtTime(s.pool.lastHeartbeatOk) + ')' : '')],
      ['Tasks held', String(s.heldTasks) + ' of ' + s.capacity.maxTasks],
      ['Offered to tasks', s.capacity.cpuCores + ' cores, ' + s.capacity.memoryGb + ' GB'],
      ['Executors', s.executors.map((e) => e.executorId + ' (' + e.runtime + ', ' + e.running + '/' + e.concurrency + ')').join(', ') || 'none'],
      ['Host now', host ? 'CPU ' + fmtNum(host.cpuPercent) + ' %, memory ' + fmtNum(host.memoryPercent) + ' %, disk ' + fmtNum(host.diskPercent) + ' %' : 'no sample'],
      ['Monitor', !h ? 'no report yet' : h.ready ? 'ready (since ' + fmtTime(h.at) + ')' : 'not ready: ' + h.checks.filter((c) => !c.ok).map((c) => c.name + ': ' + c.reason).join('; ')],
    ]);
  }
  function renderOwner(o) {
    $('owner').hidden = !o;
    if (!o) return;
    facts($('owner-facts'), [
      ['Owner busy', o.busy ? 'yes' : 'no'], ['Owner CPU', fmtNum(o.ownerCpuPercent) + ' %'], ['Since', o.since ? fmtTime(o.since) : '–'],
      ['Why', o.reason || '–'], ['Frozen tasks', (o.frozenTasks || []).join(', ') || 'none'], ['Schedule open', o.scheduleOpen ? 'yes' : 'no'],
    ]);
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

  // ---- tasks: the lists from /api/tasks, with what the task events said since (started, ended)
  async function refreshTasks() {
    const asked = Date.now();
    const t = await api('/api/tasks');
    state.tasks = t;
    const listed = new Set(t.history.map((h) => h.taskId).concat((t.refused || []).map((r) => r.taskId)));
    // An event is dropped once the lists show it: a start the running list has seen (or ended since), an end the history has.
    for (const [id, e] of state.started) if (e.receivedAt < asked || state.ended.has(id)) state.started.delete(id);
    for (const id of state.ended.keys()) if (listed.has(id)) state.ended.delete(id);
    renderTasks();
  }
  const renderTasks = () => window.hivemindTasks.render(state, { selectRunning, selectHistory });

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

  // ---- the monitor's samples: the last hour from /api, then each one its event brings
  const drawCharts = window.hivemindCharts.create();
  function addSamples(list) {
    const byAt = new Map(state.samples.map((s) => [s.at, s]));
    for (const s of list) byAt.set(s.at, s);
    const newest = Math.max(0, ...byAt.keys());
    state.samples = [...byAt.values()].filter((s) => s.at > newest - HOUR_MS).sort((a, b) => a.at - b.at);
    drawCharts(state.samples);
    const last = state.samples[state.samples.length - 1];
    if (!last) return;
    const node = $('latest-sample');
    node.dataset.at = String(last.at);
    node.textContent = 'Last sample ' + fmtTime(last.at) + ': CPU ' + fmtNum(last.cpuPercent) + ' %, memory ' + fmtNum(last.memoryPercent) + ' %, disk ' + fmtNum(last.diskPercent) + ' %';
    renderFacts();
  }
  async function refreshCharts() {
    addSamples((await api('/api/monitor/history?minutes=60')).samples);
  }

  // ---- the live link: the starting state on every (re)connection, then the events
  const live = window.hivemindLive;
  const statusSoon = live.coalesced(refreshStatus);
  const tasksSoon = live.coalesced(refreshTasks);
  const chartsSoon = live.coalesced(refreshCharts);
  const now = () => Date.now();
  live.follow({
    open() { badge($('live-state'), 'Live', 'ok'); statusSoon(); tasksSoon(); chartsSoon(); },
    closed(forGood) { badge($('live-state'), forGood ? 'Not live: reload the page' : 'Reconnecting…', 'bad'); if (forGood) statusSoon(); },
    // Each sample also refreshes what only the gateway knows (pool link, CPT, task usage).
    'hivemind.host.sample'(e) { addSamples([e.sample]); statusSoon(); tasksSoon(); },
    'hivemind.health.changed'(e) { state.health = e; renderFacts(); statusSoon(); },
    'hivemind.owner.changed'(e) { renderOwner(e.state); statusSoon(); },
    'hivemind.task.started'(e) { state.started.set(e.taskId, Object.assign({ receivedAt: now() }, e)); renderTasks(); statusSoon(); tasksSoon(); },
    'hivemind.task.finished'(e) { taskEnded(e); },
    'hivemind.task.stopped'(e) { taskEnded(e); },
  });
  function taskEnded(e) {
    state.started.delete(e.taskId);
    state.ended.set(e.taskId, e);
    renderTasks();
    statusSoon();
    tasksSoon();
  }
  followOutput();
})();
