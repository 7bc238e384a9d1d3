// The dashboard's helpers: the API call (a 401 goes to the login page), formatting, DOM.
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);

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

  window.hivemindUi = { $, api, fmtTime, fmtBytes, fmtNum, fmtSecs, el, facts, emptyRow, badge };
})();
