import type { TypedEmitter } from '@mirrorstream/receiver/protocol';
import type { EndpointState } from '../health/failure-detector.js';
import type { GapDeclared, HedgeEvent, RoleChange, SwitchRecord } from '../streams/types.js';

/** Public events of a gateway; telemetry (metrics) and embedders listen to them. */
export type RoleChangedEvent = RoleChange;
export type SwitchEvent = { streamId: string } & SwitchRecord;
export type GapEvent = GapDeclared;
export type { HedgeEvent };

export interface EndpointHealthEvent {
  endpointId: string;
  state: EndpointState;
  previous: EndpointState;
  phi: number;
  at: number;
}

/** One heartbeat echo: the round trip gateway → receiver → gateway on the control channel. */
export interface HeartbeatEvent {
  endpointId: string;
  rttMs: number;
  at: number;
}

export type GatewayEvents = {
  roleChanged: [event: RoleChangedEvent];
  switched: [event: SwitchEvent];
  endpointHealth: [event: EndpointHealthEvent];
  gap: [event: GapEvent];
  heartbeat: [event: HeartbeatEvent];
  /** A standby began receiving beside a suspect active endpoint, stopped, or took over. */
  hedged: [event: HedgeEvent];
  /** close() began: the gateway drains (the streaming ingest tells its producers GOAWAY). */
  closing: [];
};

/** How the modules raise the gateway's events (the facade is the emitter). */
export type EventSink = Pick<TypedEmitter<GatewayEvents>, 'emit'>;

/** Raise `endpointHealth` if the endpoint's state moved away from `previous`. */
export function emitEndpointHealth(events: EventSink, ep: { readonly id: string; readonly state: EndpointState; readonly phi: number }, previous: EndpointState, at: number): void {
  if (previous === ep.state) return;
  events.emit('endpointHealth', { endpointId: ep.id, state: ep.state, previous, phi: ep.phi, at });
}
