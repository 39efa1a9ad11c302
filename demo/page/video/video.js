// The video demo page: every receiver's chunks go to one VideoPlayer (the browser SDK's
// WebCodecs player: the highest layer that arrives whole, on the source's timeline, duplicates
// around a switch dropped), and for each switch the page says what the viewer saw: the longest
// frozen picture, frames skipped, whether the picture went back in time.
import { VideoPlayer } from '/sdk/mirrorstream-receiver.js';
import { $, startPaths } from '../paths.js';

const PLAYOUT_DELAY_MS = 250;
/** Around a switch, the viewer's experience is judged from 1 s before to 2 s after it. */
const BEFORE_MS = 1_000;
const AFTER_MS = 2_000;
const LAYER_NAMES = ['160×90', '320×180', '640×360'];

/** `[epoch ms, frame, layer]` per picture shown, the last 3 000 (100 s at 30/s). */
const shows = [];
const epochNow = () => performance.timeOrigin + performance.now();
const player = new VideoPlayer({
  canvas: $('#video'),
  playoutDelayMs: PLAYOUT_DELAY_MS,
  onShow: (p) => {
    shows.push([epochNow(), p.frame, p.layer]);
    if (shows.length > 3_000) shows.shift();
  },
});
window.videoPlayer = player;
window.videoShows = shows;
$('#delay').textContent = `${PLAYOUT_DELAY_MS} ms`;

/** What the viewer saw between `from` and `to` (epoch ms). */
function experience(from, to) {
  let longest = 0;
  let skipped = 0;
  let back = 0;
  for (let i = 1; i < shows.length; i++) {
    const [at, frame] = shows[i];
    const [prevAt, prevFrame] = shows[i - 1];
    if (at < from || at > to) continue;
    longest = Math.max(longest, at - prevAt);
    if (frame < prevFrame) back++;
    else skipped += Math.max(0, frame - prevFrame - 1);
  }
  return { longest, skipped, back };
}

function onState(state) {
  const s = player.stats();
  const layer = s.layer;
  $('#layerShown').textContent = layer === undefined ? '–' : `${layer} (${LAYER_NAMES[layer] ?? '?'})`;
  $('#layersIntact').textContent = player.intactLayers().join(', ') || '–';
  $('#shown').textContent = String(s.shown);
  $('#freeze').textContent = s.shown > 1 ? `${Math.round(s.longestFreezeMs)} ms` : '–';
  $('#framesSkipped').textContent = String(s.skipped);
  $('#wentBack').textContent = String(s.wentBack);
  $('#rebuffers').textContent = String(s.rebuffers);
  const badge = $('#layerBadge');
  if (layer !== undefined) {
    badge.textContent = `layer ${layer} · ${LAYER_NAMES[layer] ?? '?'}`;
    badge.className = `badge ${layer < LAYER_NAMES.length - 1 ? 'low' : ''}`;
  }
  const now = epochNow();
  const items = state.stream.switches.filter((w) => w.from !== null).slice().reverse().map((w) => {
    const e = experience(w.at - BEFORE_MS, w.at + AFTER_MS);
    const final = now > w.at + AFTER_MS;
    const cls = e.back > 0 || e.longest > 200 ? 'bad' : 'ok';
    return `<li>${new Date(w.at).toLocaleTimeString()} → <b>${w.to?.slice(state.session.length + 1)}</b>: <span class="${cls}">longest frozen picture ${Math.round(e.longest)} ms</span>, ${e.skipped} frames skipped, ${e.back ? `<span class="bad">went back ${e.back}×</span>` : 'never back in time'}${final ? '' : ' (measuring…)'}</li>`;
  });
  $('#experience').innerHTML = items.join('');
}

await startPaths({ feed: 'video', onChunk: (_id, c) => player.push(c.payload), onState, layerCap: true });
