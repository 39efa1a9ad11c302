// What both demo pages share: a viewer session on the demo server, three receivers (browser
// SDK) of the viewer's own failover stream, a panel per receiver with its health from the
// gateway (server-sent events) and the sliders that degrade its path through the demo's netsim
// relays, the switch timeline, and the counters (last seq, received, skipped by policy, missed).
import { Receiver } from '/sdk/mirrorstream-receiver.js';

export const $ = (sel, el = document) => el.querySelector(sel);

/** One receiver's panel: role, verdict, metrics (`extra` first: e.g. the video page's layer cap), RTT chart, sliders. */
function panelHtml(extra) {
  const metrics = [...extra, ['RTT', 'rtt', '–'], ['loss', 'loss', '–'], ['delivery', 'rate', '–'], ['chunks', 'count', '0']];
  return `<article class="panel">
    <div class="head"><h2 class="name"></h2><span class="role standby">connecting</span></div>
    <div class="verdict">–</div>
    <dl class="metrics${metrics.length === 5 ? ' five' : ''}">${metrics.map(([dt, cls, v]) => `<div><dt>${dt}</dt><dd class="${cls}">${v}</dd></div>`).join('')}</dl>
    <canvas class="spark" width="360" height="60"></canvas>
    <div class="controls">
      <label>loss <input type="range" class="lossPct" min="0" max="50" step="1" value="0"><output>0 %</output></label>
      <label>delay <input type="range" class="delayMs" min="0" max="1000" step="10" value="0"><output>0 ms</output></label>
      <label>rate cap <input type="range" class="rateKBps" min="0" max="200" step="5" value="0"><output>off</output></label>
      <label class="kill"><input type="checkbox" class="killBox"> kill the path</label>
    </div>
  </article>`;
}

/**
 * `feed`: 'ticks' or 'video'. `onChunk(id, chunk)` gets every chunk of every receiver (a seq
 * may come twice: from the old and the new receiver around a switch); `onState(state)` the
 * server's state twice a second; `layerCap`: show each panel's layer cap (the layers policy).
 */
export async function startPaths({ feed, onChunk, onState, layerCap = false }) {
  const answer = await fetch(`/demo/api/session?feed=${feed}`, { method: 'POST' });
  const config = await answer.json();
  if (!answer.ok) {
    // e.g. 429 (the demo's viewer limit) or 503 (no ffmpeg for the video source): say so on the page
    $('.hint').textContent = `The demo cannot start a session: ${config.error?.message ?? answer.status}`;
    throw new Error(config.error?.code ?? String(answer.status));
  }
  const api = `/demo/api/${config.session}`;
  window.demoSession = config.session;
  const seen = new Set();
  // seqs an endpoint declared skipped by the stream's overflow policy (GAP) and no receiver
  // delivered (the next receiver after a switch may deliver what the last one skipped): not missed
  const skipped = new Set();
  let minSeq = Infinity;
  let maxSeq = 0;
  const panels = new Map();
  const receivers = new Map();

  for (const id of config.endpoints) {
    const holder = document.createElement('div');
    holder.innerHTML = panelHtml(layerCap ? [['layer cap', 'layerCap', '–']] : []);
    const el = holder.firstElementChild;
    $('.name', el).textContent = id;
    $('#panels').append(el);
    const panel = { el, count: 0, history: [] };
    panels.set(id, panel);
    for (const input of el.querySelectorAll('input')) input.addEventListener('change', () => impair(id));
    for (const input of el.querySelectorAll('input[type=range]')) input.addEventListener('input', () => showValues(el));
    // signaling goes through the demo server, which puts netsim relays into the path
    const viaDemo = (url, init) =>
      init?.method === 'POST' && String(url).endsWith('/webrtc') ? fetch(`${api}/signal/${id}`, init) : fetch(url, init);
    const rx = new Receiver({ gatewayUrl: location.origin, endpointId: config.ids[id], token: config.tokens[id], fetch: viaDemo });
    receivers.set(id, rx);
    rx.on('chunk', (c) => {
      panel.count++;
      if (!seen.has(c.seq)) {
        seen.add(c.seq);
        skipped.delete(c.seq);
        minSeq = Math.min(minSeq, c.seq);
        maxSeq = Math.max(maxSeq, c.seq);
      }
      onChunk(id, c);
    });
    rx.on('gap', (g) => {
      if (!String(g.reason).startsWith('overflow:')) return;
      for (let s = g.from; s <= g.to && s - g.from < 100_000; s++) if (!seen.has(s)) skipped.add(s);
    });
    rx.on('role', (r) => setRole(id, r.role));
    rx.on('status', (s) => { if (s !== 'connected') setRole(id, s); });
    rx.connect().catch(() => setRole(id, 'unreachable'));
  }

  function showValues(el) {
    const v = (cls) => Number($(`.${cls}`, el).value);
    const out = el.querySelectorAll('output');
    out[0].textContent = `${v('lossPct')} %`;
    out[1].textContent = `${v('delayMs')} ms`;
    out[2].textContent = v('rateKBps') ? `${v('rateKBps')} kB/s` : 'off';
  }

  async function impair(id) {
    const el = panels.get(id).el;
    showValues(el);
    await fetch(`${api}/impair/${id}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ lossPct: Number($('.lossPct', el).value), delayMs: Number($('.delayMs', el).value), rateKBps: Number($('.rateKBps', el).value), kill: $('.killBox', el).checked }),
    });
  }

  function setRole(id, role) {
    const el = panels.get(id).el;
    const badge = $('.role', el);
    badge.textContent = role;
    badge.className = `role ${role === 'active' ? 'active' : 'standby'}`;
    el.classList.toggle('active', role === 'active');
  }

  /** An endpoint's name on this page: its id without the session prefix. */
  const nameOf = (endpointId) => (endpointId ? endpointId.slice(config.session.length + 1) : '—');

  function render(state) {
    for (const e of state.stream.endpoints) {
      const p = panels.get(nameOf(e.endpoint_id));
      if (!p) continue;
      const el = p.el;
      const verdict = $('.verdict', el);
      verdict.textContent = e.state === 'alive' ? `${e.verdict}${e.reasons.length ? ` (${e.reasons.join(', ')})` : ''} · score ${e.score}` : e.state;
      verdict.className = `verdict ${e.state === 'alive' ? e.verdict : e.state}`;
      $('.rtt', el).textContent = fmt(e.metrics.rtt_ms, 'ms', 1);
      $('.loss', el).textContent = e.metrics.loss_ratio?.value !== undefined ? `${(e.metrics.loss_ratio.value * 100).toFixed(1)} %` : '–';
      $('.rate', el).textContent = `${(e.delivered_bytes_per_sec / 1000).toFixed(1)} kB/s`;
      $('.count', el).textContent = String(p.count);
      const layerCap = $('.layerCap', el);
      // the gateway's layers policy: the highest layer this endpoint gets now (null: all)
      if (layerCap) layerCap.textContent = e.role === 'active' ? (e.layer_cap === null ? 'all' : String(e.layer_cap)) : '–';
      p.history.push(e.metrics.rtt_ms?.value ?? 0);
      if (p.history.length > 120) p.history.shift();
      drawLine($('.spark', el), p.history, '#5aa9ff', 'rgba(90,169,255,.12)');
    }
    const items = state.stream.switches.slice().reverse().map((s) => {
      const when = new Date(s.at).toLocaleTimeString();
      const detail = s.detail ? ` (${s.detail.join(', ')})` : '';
      // measured by the gateway: the old path's last ack → the new path's first ack
      const gap = s.interruption_ms !== undefined ? ` · <b class="interruption">${s.interruption_ms} ms</b> interruption` : s.from && s.to ? ' · measuring…' : '';
      return `<li><span class="when">${when}</span>${nameOf(s.from)} → <b>${nameOf(s.to)}</b> <span class="reason">${s.reason}${detail}</span> from seq ${s.from_seq}${gap}</li>`;
    });
    $('#timeline').innerHTML = items.join('');
    $('#lastSeq').textContent = String(state.stream.last_seq);
    $('#received').textContent = String(seen.size);
    const skippedEl = $('#skipped');
    if (skippedEl) skippedEl.textContent = String(skipped.size);
    // seen and skipped never share a seq; a skip beyond the newest chunk seen is not in the range yet
    let skippedInRange = skipped.size;
    for (const s of skipped) if (s < minSeq || s > maxSeq) skippedInRange--;
    const missed = maxSeq >= minSeq ? maxSeq - minSeq + 1 - seen.size - skippedInRange : 0;
    $('#missed').textContent = String(missed);
    $('#missed').className = `big ${missed === 0 ? 'ok' : 'bad'}`;
    onState?.(state);
  }
  new EventSource(`${api}/events`).onmessage = (e) => render(JSON.parse(e.data));
  return { config, receivers, nameOf };
}

const fmt = (m, unit, digits = 0) => (m && m.value !== undefined && m.value !== null ? `${Number(m.value).toFixed(digits)} ${unit}` : '–');

/** `marks`: indexes into `values` where a dashed vertical line goes (switches on a chart). */
export function drawLine(canvas, values, color, fill, marks = []) {
  const ctx = canvas.getContext('2d');
  const { width: w, height: h } = canvas;
  ctx.clearRect(0, 0, w, h);
  if (values.length < 2) return;
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const span = hi - lo || 1;
  ctx.beginPath();
  values.forEach((v, i) => {
    const x = (i / (values.length - 1)) * w;
    const y = h - 6 - ((v - lo) / span) * (h - 12);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  ctx.stroke();
  if (fill) {
    ctx.lineTo(w, h);
    ctx.lineTo(0, h);
    ctx.closePath();
    ctx.fillStyle = fill;
    ctx.fill();
  }
  ctx.setLineDash([4, 4]);
  ctx.strokeStyle = '#ffb454';
  ctx.lineWidth = 1;
  for (const i of marks) {
    const x = (i / (values.length - 1)) * w;
    ctx.beginPath();
    ctx.moveTo(x, 0);
    ctx.lineTo(x, h);
    ctx.stroke();
  }
  ctx.setLineDash([]);
}
