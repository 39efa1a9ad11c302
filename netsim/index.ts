/**
 * netsim: a userspace network impairment proxy for loopback tests, benchmarks and demos
 * (tc netem is not available on every kernel). See README.md.
 */
export {
  DEFAULT_QUEUE_BYTES,
  DelayLine,
  ImpairmentModel,
  NO_IMPAIRMENT,
  isLoopback,
  ownAddresses,
  validateImpairment,
  type DelayLineOptions,
  type Direction,
  type DirectionSelector,
  type DirectionStats,
  type Impairment,
  type ModelOptions,
  type RelayOptions,
  type RelayStats,
  type RelayTarget,
  type Verdict,
} from './impairment.js';
export { UdpRelay, type UdpRelayStats } from './udp-relay.js';
export { TcpRelay, type TcpImpairment, type TcpRelayOptions, type TcpRelayStats } from './tcp-relay.js';
export { candidateAddresses, rewriteCandidateLine, rewriteCandidates, type CandidateAddress, type CandidateMap } from './sdp.js';
export { ImpairedLink, loopbackHostCandidates, type ImpairedLinkOptions } from './webrtc-link.js';
