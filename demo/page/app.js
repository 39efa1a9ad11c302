// The market demo page: the shared feed of ticks through this viewer's failover stream
// (paths.js: receivers, panels, sliders, timeline), and the price chart with a dashed line
// at every switch.
import { $, drawLine, startPaths } from './paths.js';

const prices = [];
const priceSeqs = [];
const seen = new Set();
const decoder = new TextDecoder();

function onChunk(_id, c) {
  if (seen.has(c.seq)) return;
  seen.add(c.seq);
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

function onState(state) {
  $('#px').textContent = prices.length ? prices[prices.length - 1].toFixed(3) : '–';
  const switchMarks = state.stream.switches.filter((s) => s.from !== null).map((s) => priceSeqs.findIndex((q) => q >= s.from_seq)).filter((i) => i > 0);
  drawLine($('#priceChart'), prices, '#3ddc97', 'rgba(61,220,151,.10)', switchMarks);
}

await startPaths({ feed: 'ticks', onChunk, onState });
