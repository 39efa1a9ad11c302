/** The WebRTC relay pair lives in netsim (the demo uses it too). */
export { ImpairedLink, loopbackHostCandidates } from '../../netsim/index.js';
