// The dashboard's charts of the monitor's host samples (uPlot), the last hour of them.
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);

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

  function create() {
    const charts = {
      cpu: chart('chart-cpu', [{ label: 'CPU %', color: '#1971c2' }], [0, 100]),
      memory: chart('chart-memory', [{ label: 'Memory %', color: '#2f9e44' }], [0, 100]),
      disk: chart('chart-disk', [{ label: 'Disk %', color: '#e67700' }], [0, 100]),
      net: chart('chart-net', [{ label: 'in KB/s', color: '#7048e8' }, { label: 'out KB/s', color: '#d6336c' }]),
      gpu: chart('chart-gpu', [{ label: 'GPU %', color: '#0c8599' }], [0, 100]),
    };
    // Draws the samples (oldest first).
    return function draw(samples) {
      const x = samples.map((s) => s.at / 1000);
      charts.cpu.setData([x, samples.map((s) => s.cpuPercent)]);
      charts.memory.setData([x, samples.map((s) => s.memoryPercent)]);
      charts.disk.setData([x, samples.map((s) => s.diskPercent)]);
      charts.net.setData([x, samples.map((s) => s.netRxBytesPerSec / 1024), samples.map((s) => s.netTxBytesPerSec / 1024)]);
      charts.gpu.setData([x, samples.map((s) => (s.gpus && s.gpus[0] ? s.gpus[0].utilizationPercent : 0))]);
    };
  }

  window.hivemindCharts = { create };
})();
