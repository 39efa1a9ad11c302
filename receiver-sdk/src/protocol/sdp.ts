/**
 * Offer without candidates, apply the answer's after its description: how a libdatachannel
 * offerer (the Node receiver dialing, the gateway dialing a listening receiver) connects without
 * losing a race inside libdatachannel. Its setRemoteDescription gives the ICE agent the remote
 * credentials before it stores the description; if the answerer's connectivity checks are
 * already arriving (it had the offer's candidates), ICE and then DTLS complete on
 * libdatachannel's threads inside that window, the fingerprint check finds no remote
 * description ("DTLS alert: unknown CA", "certificate verify failed"), the peer closes, and the
 * call throws "Got a remote candidate without ICE transport" (its debug log: 6-20 of 50
 * receivers dialing one gateway at once, each in its own process). With no candidates in the
 * offer the answerer cannot check first; the offerer starts the checks once it has added the
 * answer's candidates, after the description is stored, and the answerer learns the offerer's
 * address from those checks (as it does for a browser, whose mDNS candidates it drops).
 */
export interface SplitDescription {
  /** The SDP without `a=candidate` and `a=end-of-candidates` lines. */
  description: string;
  /** Each candidate (`candidate:…`, without `a=`) with the mid of its media section. */
  candidates: { candidate: string; mid: string }[];
}

export function splitCandidates(sdp: string): SplitDescription {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const kept: string[] = [];
  const found: { candidate: string; section: number }[] = [];
  const mids: string[] = [];
  let section = -1;
  for (const line of sdp.split(/\r?\n/)) {
    if (line.startsWith('m=')) section++;
    else if (line.startsWith('a=mid:') && section >= 0) mids[section] = line.slice('a=mid:'.length);
    if (line.startsWith('a=candidate:')) found.push({ candidate: line.slice(2), section });
    else if (line !== 'a=end-of-candidates') kept.push(line);
  }
  return { description: kept.join(eol), candidates: found.map(({ candidate, section: s }) => ({ candidate, mid: mids[s] ?? mids[0] ?? '0' })) };
}
