// The demo page: three receivers (browser SDK) of this viewer's own failover stream, their
// health from the gateway as server-sent events, and sliders that degrade each one's network
// through the demo's netsim relays.
import { Receiver } from '/sdk/mirrorstream-receiver.js';

const $ = (sel, el = document) => el.querySelector(sel);
const config = await (await fetch('/demo/api/session', { method: 'POST' })).json();
const api = `/demo/api/${config.session}`;
window.demoSession = config.session;
const seen = new Set();
let minSeq = Infinity;
let maxSeq = 0;
const prices = [];
const priceSeqs = [];
const panels = new Map();

for (const id of config.endpoints) {
  const el = $('#panelTemplate').content.firstElementChild.cloneNode(true);
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
  rx.on('chunk', (c) => onChunk(id, c));
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

const decoder = new TextDecoder();
function onChunk(id, c) {
  panels.get(id).count++;
  if (seen.has(c.seq)) return;
  seen.add(c.seq);
  minSeq = Math.min(minSeq, c.seq);
  maxSeq = Math.max(maxSeq, c.seq);
  try {
    const tick = JSON.parse(decoder.decode(c.payload));
    prices.push(tick.px);
    priceSeqs.push(c.seq);
    if (prices.length > 600) {
      prices.shift();
      priceSeqs.shift();
    }
  } catch { /* not a tick */ }
}

function setRole(id, role) {
  const el = panels.get(id).el;
  const badge = $('.role', el);
  badge.textContent = role;
  badge.className = `role ${role === 'active' ? 'active' : 'standby'}`;
  el.classList.toggle('active', role === 'active');
}

/** `marks`: indexes into `values` where a dashed vertical line goes (switches on the price chart). */
function drawLine(canvas, values, color, fill, marks = []) {
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

const fmt = (m, unit, digits = 0) => (m && m.value !== undefined && m.value !== null ? `${Number(m.value).toFixed(digits)} ${unit}` : '–');

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
  const missed = maxSeq >= minSeq ? maxSeq - minSeq + 1 - seen.size : 0;
  $('#missed').textContent = String(missed);
  $('#missed').className = `big ${missed === 0 ? 'ok' : 'bad'}`;
  $('#px').textContent = prices.length ? prices[prices.length - 1].toFixed(3) : '–';
  const switchMarks = state.stream.switches.filter((s) => s.from !== null).map((s) => priceSeqs.findIndex((q) => q >= s.from_seq)).filter((i) => i > 0);
  drawLine($('#priceChart'), prices, '#3ddc97', 'rgba(61,220,151,.10)', switchMarks);
}
new EventSource(`${api}/events`).onmessage = (e) => render(JSON.parse(e.data));
