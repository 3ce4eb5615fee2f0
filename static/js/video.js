// video.js — one call interface over two providers.
//
//   const call = createCall({provider, ...joinReply, offerer}, {onRemoteStream, onScreenTrack, onState, sendSignal});
//   await call.start(localVideoEl, remoteVideoEl);
//   call.setMuted(true); call.setCameraOff(true);
//   await call.startScreenShare(); call.stopScreenShare();
//   call.handleSignal(payload);   // built-in only: payloads relayed by the server's `signal` frames
//   call.resync();                // after the WebSocket reconnects
//   await call.leave();
//
// onState(name, detail) names: connecting, waiting, connected, reconnecting,
// peer-left, closed, media-error {error, audio, video}, sharing, not-sharing,
// autoplay-blocked, error {message}.
//
// For automated tests: window.__call is the call, window.__stats() summarises
// inbound/outbound video from getStats().

const VIDEO_CONSTRAINTS = { width: { ideal: 1280 }, height: { ideal: 720 } };

export function createCall(join, handlers = {}) {
  const h = {
    onRemoteStream() {}, onScreenTrack() {}, onState() {}, sendSignal() {},
    ...handlers,
  };
  const call = join.provider === 'daily' ? createDailyCall(join, h) : createBuiltinCall(join, h);
  window.__call = call;
  window.__stats = () => call.stats();
  return call;
}

// ---------------------------------------------------------------------------
// Local media

/**
 * Ask for camera + microphone. Never throws: on refusal or missing devices it
 * returns whatever it could get (possibly an empty stream) plus the error, so
 * the call can still go ahead receive-only.
 */
export async function getLocalMedia() {
  const md = navigator.mediaDevices;
  if (!md || !md.getUserMedia) {
    const error = new Error('This browser cannot use a camera or microphone here (a secure https connection is required).');
    error.name = 'NotSupportedError';
    return { stream: new MediaStream(), error };
  }
  try {
    return { stream: await md.getUserMedia({ audio: true, video: VIDEO_CONSTRAINTS }), error: null };
  } catch (error) {
    // A refusal covers both devices; asking again would only nag.
    if (error.name === 'NotAllowedError' || error.name === 'SecurityError') {
      return { stream: new MediaStream(), error };
    }
    // One device missing or busy: still use the other.
    for (const constraints of [{ audio: true }, { video: VIDEO_CONSTRAINTS }]) {
      try { return { stream: await md.getUserMedia(constraints), error }; } catch { /* try the next */ }
    }
    return { stream: new MediaStream(), error };
  }
}

/** Human text for a media error, given which devices we did get. */
export function describeMediaError(error, { audio = false, video = false } = {}) {
  const name = error && error.name;
  const continuing = audio || video
    ? `The call continues with your ${audio ? 'microphone' : 'camera'} only.`
    : 'You can still see and hear the other party, but they cannot see or hear you.';
  switch (name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return `Camera and microphone access was refused. ${continuing} To fix this, allow camera and microphone for this site in your browser settings, then reload the page.`;
    case 'NotFoundError':
    case 'OverconstrainedError':
      return `No ${audio ? 'camera' : video ? 'microphone' : 'camera or microphone'} was found. ${continuing}`;
    case 'NotReadableError':
    case 'AbortError':
      return `Your camera or microphone is in use by another application or could not be started. ${continuing}`;
    case 'NotSupportedError':
      return `${error.message} ${continuing}`;
    default:
      return `Could not start your camera or microphone${error && error.message ? ` (${error.message})` : ''}. ${continuing}`;
  }
}

function attach(el, stream, h) {
  if (!el) return;
  if (el.srcObject !== stream) el.srcObject = stream;
  if (!stream) return;
  const p = el.play();
  if (p && p.catch) {
    p.catch((e) => { if (e && e.name === 'NotAllowedError') h.onState('autoplay-blocked'); });
  }
}

function randomId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

function normaliseIceServers(list) {
  if (!Array.isArray(list)) return [];
  return list
    .map((s) => (typeof s === 'string' ? { urls: s } : s))
    .filter((s) => s && (s.urls || s.url))
    .map((s) => (s.urls ? s : { ...s, urls: s.url }));
}

// ---------------------------------------------------------------------------
// Built-in WebRTC: one RTCPeerConnection, signalled over our WebSocket.
//
// "Perfect negotiation": both sides may renegotiate (screen share starts and
// stops on either side); on a collision the polite side (the requester) yields
// and the impolite side (the consultant) wins. The consultant also makes the
// first offer; the requester holds back until it has answered once.
//
// Signal payloads: {kind: 'offer'|'answer', sdp, streams}, {kind: 'ice', candidate},
// plus {kind: 'ready'} (I just started / reconnected) and {kind: 'bye'} (I left).
// Every payload carries `pid`, a random id for this page's peer connection, so a
// side that reloads is recognised and the other side starts a fresh connection
// instead of trying to renegotiate with a peer that no longer exists.
// `streams` = {camera, screen} media stream ids so the receiver can tell the
// screen-share video from the camera video.

function createBuiltinCall(join, h) {
  const offerer = !!join.offerer;
  const polite = !offerer;
  const iceServers = normaliseIceServers(join.ice_servers);
  const localId = randomId();

  let pc = null;
  let remoteId = null;
  let localStream = new MediaStream();
  let screenStream = null;
  let screenSender = null;
  let localEl = null;
  let remoteEl = null;
  let remoteCamera = null; // MediaStream shown in the remote video element
  let remoteScreen = null;
  let remoteIds = { camera: null, screen: null };
  let closed = false;
  let disconnectTimer = null;

  // Per-connection negotiation state (reset with the peer connection).
  let makingOffer = false;
  let ignoreOffer = false;
  let settingRemoteAnswer = false;
  let negotiated = false;
  let heldBack = false;
  let pendingIce = [];

  // Signals are processed strictly in order, and only once start() has built the
  // peer connection (the offer may arrive while we are still asking for the camera).
  let markStarted;
  let chain = new Promise((resolve) => { markStarted = resolve; });

  const call = {
    provider: 'builtin',
    local: { audio: false, video: false },
    start,
    setMuted,
    setCameraOff,
    startScreenShare,
    stopScreenShare,
    handleSignal,
    resync,
    leave,
    stats,
    get pc() { return pc; },
    get sharing() { return !!screenStream; },
  };

  function send(payload) {
    if (!closed || payload.kind === 'bye') h.sendSignal({ ...payload, pid: localId });
  }

  function streamIds() {
    return { camera: localStream.id, screen: screenStream ? screenStream.id : null };
  }

  async function start(localVideoEl, remoteVideoEl) {
    localEl = localVideoEl;
    remoteEl = remoteVideoEl;
    h.onState('connecting');
    if (typeof RTCPeerConnection === 'undefined') {
      h.onState('error', { message: 'This browser does not support video calls (WebRTC).' });
      return call.local;
    }
    const { stream, error } = await getLocalMedia();
    if (closed) { stream.getTracks().forEach((t) => t.stop()); return call.local; }
    localStream = stream;
    call.local = { audio: stream.getAudioTracks().length > 0, video: stream.getVideoTracks().length > 0 };
    if (error) h.onState('media-error', { error, ...call.local });
    if (localEl) {
      localEl.muted = true; // never play our own microphone back
      attach(localEl, call.local.video ? stream : null, h);
    }
    pc = newPeer();
    addLocalTracks(pc);
    send({ kind: 'ready' });
    h.onState('waiting');
    markStarted();
    return call.local;
  }

  function newPeer() {
    const p = new RTCPeerConnection({ iceServers });
    makingOffer = false;
    ignoreOffer = false;
    settingRemoteAnswer = false;
    negotiated = false;
    heldBack = false;
    pendingIce = [];

    p.onnegotiationneeded = () => negotiate(p);
    p.onicecandidate = ({ candidate }) => {
      if (candidate && p === pc) send({ kind: 'ice', candidate: candidate.toJSON() });
    };
    p.ontrack = ({ track, streams }) => { if (p === pc) onRemoteTrack(track, streams[0] || new MediaStream([track])); };
    p.onconnectionstatechange = () => {
      if (p !== pc) return;
      const s = p.connectionState;
      if (s === 'connected') {
        clearTimeout(disconnectTimer);
        h.onState('connected');
      } else if (s === 'disconnected') {
        h.onState('reconnecting');
        // Often recovers by itself; if not, restart ICE (a fresh offer).
        clearTimeout(disconnectTimer);
        disconnectTimer = setTimeout(() => {
          if (p === pc && p.connectionState !== 'connected' && negotiated) p.restartIce();
        }, 4000);
      } else if (s === 'failed') {
        h.onState('reconnecting');
        if (negotiated) p.restartIce();
      }
    };
    return p;
  }

  async function negotiate(p) {
    if (p !== pc || closed) return;
    if (!offerer && !negotiated) { heldBack = true; return; } // the consultant opens the call
    if (makingOffer || p.signalingState !== 'stable') return;
    try {
      makingOffer = true;
      await p.setLocalDescription();
      if (p === pc) send({ kind: 'offer', sdp: p.localDescription.sdp, streams: streamIds() });
    } catch (e) {
      console.warn('could not create an offer', e);
    } finally {
      makingOffer = false;
    }
  }

  function addLocalTracks(p) {
    const audio = localStream.getAudioTracks()[0];
    const video = localStream.getVideoTracks()[0];
    // The offerer always offers audio + video so the other side can send even
    // if we have no devices; the answerer's unmatched recvonly slots would only
    // cause a needless second negotiation, so it adds nothing.
    if (audio) p.addTrack(audio, localStream);
    else if (offerer) p.addTransceiver('audio', { direction: 'recvonly' });
    if (video) p.addTrack(video, localStream);
    else if (offerer) p.addTransceiver('video', { direction: 'recvonly' });
    if (screenStream) screenSender = p.addTrack(screenStream.getVideoTracks()[0], screenStream);
  }

  function onRemoteTrack(track, stream) {
    if (isScreen(track, stream)) {
      remoteScreen = stream;
      h.onScreenTrack(stream);
      const gone = () => {
        if (remoteScreen === stream && !stream.getVideoTracks().some((t) => t.readyState === 'live')) {
          remoteScreen = null;
          h.onScreenTrack(null);
        }
      };
      stream.addEventListener('removetrack', gone);
      track.addEventListener('ended', gone);
      return;
    }
    if (remoteCamera !== stream) {
      remoteCamera = stream;
      attach(remoteEl, stream, h);
      h.onRemoteStream(stream);
    }
  }

  function isScreen(track, stream) {
    if (track.kind !== 'video') return false;
    if (remoteIds.screen && stream.id === remoteIds.screen) return true;
    if (remoteIds.camera && stream.id === remoteIds.camera) return false;
    // Unannounced: a second video stream while the camera stream already has video.
    return !!(remoteCamera && remoteCamera !== stream && remoteCamera.getVideoTracks().length);
  }

  // Drop the current connection and build a fresh one (peer reloaded or left).
  function resetPeer() {
    const old = pc;
    if (old) {
      old.onnegotiationneeded = old.onicecandidate = old.ontrack = old.onconnectionstatechange = null;
      old.close();
    }
    clearTimeout(disconnectTimer);
    remoteIds = { camera: null, screen: null };
    if (remoteCamera) { remoteCamera = null; if (remoteEl) remoteEl.srcObject = null; h.onRemoteStream(null); }
    if (remoteScreen) { remoteScreen = null; h.onScreenTrack(null); }
    screenSender = null;
    pc = newPeer();
    addLocalTracks(pc);
  }

  function handleSignal(payload) {
    if (!payload || typeof payload !== 'object') return;
    chain = chain.then(() => processSignal(payload)).catch((e) => console.warn('signal failed', payload.kind, e));
  }

  async function processSignal(payload) {
    if (closed || !pc) return;
    if (payload.pid && payload.pid === localId) return; // our own echo
    let fresh = false;
    if (payload.pid) {
      if (remoteId && payload.pid !== remoteId) {
        resetPeer(); // the other side restarted: its old connection is gone
        fresh = true;
        h.onState('waiting');
      }
      remoteId = payload.pid;
    }
    switch (payload.kind) {
      case 'offer':
      case 'answer':
        return onDescription(payload);
      case 'ice':
        return onIce(payload.candidate);
      case 'ready':
        return onReady(fresh);
      case 'bye':
        resetPeer();
        remoteId = null;
        h.onState('peer-left');
        return undefined;
      default:
        return undefined;
    }
  }

  async function onDescription(payload) {
    const p = pc;
    if (payload.streams) {
      remoteIds = { camera: payload.streams.camera || null, screen: payload.streams.screen || null };
      if (!remoteIds.screen && remoteScreen) { remoteScreen = null; h.onScreenTrack(null); }
    }
    const desc = { type: payload.kind, sdp: payload.sdp };
    const readyForOffer = !makingOffer && (p.signalingState === 'stable' || settingRemoteAnswer);
    const collision = desc.type === 'offer' && !readyForOffer;
    ignoreOffer = !polite && collision;
    if (ignoreOffer) return; // we win the glare; the polite side will answer ours
    if (desc.type === 'answer' && p.signalingState !== 'have-local-offer') return; // duplicate or stale

    settingRemoteAnswer = desc.type === 'answer';
    try {
      await p.setRemoteDescription(desc); // an offer in have-local-offer rolls ours back (polite side)
    } finally {
      settingRemoteAnswer = false;
    }
    if (p !== pc) return;
    negotiated = true;
    const queued = pendingIce.splice(0);
    for (const c of queued) await p.addIceCandidate(c).catch(() => {});
    if (desc.type === 'offer') {
      await p.setLocalDescription();
      if (p === pc) send({ kind: 'answer', sdp: p.localDescription.sdp, streams: streamIds() });
    }
    // Tracks added before the first offer that it had no slot for (e.g. a screen
    // share started while waiting) need a negotiation of our own now.
    if (heldBack && p === pc) {
      heldBack = false;
      if (p.getTransceivers().some((t) => t.mid === null && t.sender.track)) negotiate(p);
    }
  }

  async function onIce(candidate) {
    if (!candidate) return;
    const p = pc;
    if (!p.remoteDescription) { pendingIce.push(candidate); return; }
    try {
      await p.addIceCandidate(candidate);
    } catch (e) {
      if (!ignoreOffer) console.warn('could not add ICE candidate', e);
    }
  }

  // The other side (re)appeared. If it missed our offer (it wasn't there yet),
  // send it again; if we were connected but lost media, restart ICE.
  function onReady(fresh) {
    if (fresh || !offerer) return; // a fresh connection negotiates on its own
    const p = pc;
    if (p.signalingState === 'have-local-offer' && p.localDescription) {
      send({ kind: 'offer', sdp: p.localDescription.sdp, streams: streamIds() });
    } else if (negotiated && p.connectionState !== 'connected' && p.connectionState !== 'connecting') {
      p.restartIce();
    }
  }

  /** Call after the signalling channel reconnects: anything sent meanwhile may be lost. */
  function resync() {
    if (closed || !pc) return;
    send({ kind: 'ready' });
    if (offerer) onReady(false);
  }

  function setMuted(muted) {
    localStream.getAudioTracks().forEach((t) => { t.enabled = !muted; });
  }

  function setCameraOff(off) {
    // Disabled tracks send black frames: no renegotiation, instant to undo.
    localStream.getVideoTracks().forEach((t) => { t.enabled = !off; });
  }

  async function startScreenShare() {
    if (screenStream || closed) return;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia) {
      throw new Error('Screen sharing is not supported in this browser.');
    }
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    const track = stream.getVideoTracks()[0];
    if (!track || closed) { stream.getTracks().forEach((t) => t.stop()); return; }
    if ('contentHint' in track) track.contentHint = 'detail'; // favour sharp text over smooth motion
    // The browser's own "Stop sharing" button ends the track.
    track.addEventListener('ended', () => { if (screenStream === stream) stopScreenShare(); });
    screenStream = stream;
    if (pc) screenSender = pc.addTrack(track, stream); // → negotiationneeded → offer
    h.onState('sharing');
  }

  function stopScreenShare() {
    if (!screenStream) return;
    const stream = screenStream;
    screenStream = null;
    if (pc && screenSender) {
      try { pc.removeTrack(screenSender); } catch { /* connection already closed */ }
    }
    screenSender = null;
    stream.getTracks().forEach((t) => t.stop());
    h.onState('not-sharing');
  }

  async function leave() {
    if (closed) return;
    send({ kind: 'bye' });
    closed = true;
    clearTimeout(disconnectTimer);
    if (screenStream) { screenStream.getTracks().forEach((t) => t.stop()); screenStream = null; }
    localStream.getTracks().forEach((t) => t.stop());
    if (pc) { pc.close(); }
    if (localEl) localEl.srcObject = null;
    if (remoteEl) remoteEl.srcObject = null;
    h.onScreenTrack(null);
    h.onState('closed');
  }

  async function stats() {
    const out = { framesDecoded: 0, inboundVideoTracks: 0, outboundVideoTracks: 0 };
    if (!pc || pc.connectionState === 'closed') return out;
    const report = await pc.getStats();

    // Only count streams that are live right now (stats objects outlive a stopped share).
    const receiving = new Set();
    for (const t of pc.getTransceivers()) {
      const track = t.receiver.track;
      if (track && track.kind === 'video' && track.readyState === 'live' && !track.muted
        && /recv/.test(t.currentDirection || '')) receiving.add(track.id);
    }
    const sending = new Set();
    for (const s of pc.getSenders()) {
      if (s.track && s.track.kind === 'video' && s.track.readyState === 'live') sending.add(s.track.id);
    }
    const sources = new Map();
    report.forEach((r) => { if (r.type === 'media-source') sources.set(r.id, r); });

    report.forEach((r) => {
      const kind = r.kind || r.mediaType;
      if (kind !== 'video') return;
      if (r.type === 'inbound-rtp') {
        out.framesDecoded += r.framesDecoded || 0;
        if ((r.bytesReceived || 0) > 0 && (!r.trackIdentifier || receiving.has(r.trackIdentifier))) {
          out.inboundVideoTracks += 1;
        }
      } else if (r.type === 'outbound-rtp') {
        const source = sources.get(r.mediaSourceId);
        const id = source && source.trackIdentifier;
        if ((r.bytesSent || 0) > 0 && (id ? sending.has(id) : sending.size > out.outboundVideoTracks)) {
          out.outboundVideoTracks += 1;
        }
      }
    });
    return out;
  }

  return call;
}

// ---------------------------------------------------------------------------
// Daily: daily-js call object. The library itself is served by us from
// /static/vendor/daily-js.js (vendored from npm by .ci/vendor-daily-js), never from
// a public CDN; in call-object mode it then loads Daily's call engine from Daily,
// as a script (avoidEval) so the page needs no 'unsafe-eval' (see the CSP in
// src/server.rs).

const DAILY_SCRIPT = '/static/vendor/daily-js.js';

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = src;
    s.onload = () => resolve();
    s.onerror = () => { s.remove(); reject(new Error(`could not load ${src}`)); };
    document.head.append(s);
  });
}

function createDailyCall(join, h) {
  let co = null;
  let localEl = null;
  let remoteEl = null;
  let closed = false;
  let sharing = false;
  const remoteCamera = new MediaStream();

  const call = {
    provider: 'daily',
    local: { audio: true, video: true },
    start,
    setMuted: (m) => co && co.setLocalAudio(!m),
    setCameraOff: (off) => co && co.setLocalVideo(!off),
    startScreenShare,
    stopScreenShare,
    handleSignal() {}, // Daily does its own signalling
    resync() {},
    leave,
    stats,
    get callObject() { return co; },
    get sharing() { return sharing; },
  };

  async function ensureDaily() {
    // The UMD bundle names its global `Daily`; older builds used `DailyIframe`.
    const loaded = () => window.Daily || window.DailyIframe || null;
    if (!loaded()) await loadScript(DAILY_SCRIPT).catch(() => {});
    return loaded();
  }

  function trackType(ev) {
    if (ev.type) return ev.type; // recent daily-js names it directly
    const tracks = (ev.participant && ev.participant.tracks) || {};
    const id = ev.track && ev.track.id;
    for (const name of ['screenVideo', 'screenAudio', 'video', 'audio']) {
      const t = tracks[name];
      if (t && ((t.persistentTrack && t.persistentTrack.id === id) || (t.track && t.track.id === id))) return name;
    }
    return ev.track ? ev.track.kind : null;
  }

  function onTrackStarted(ev) {
    const type = trackType(ev);
    const track = ev.track;
    if (!track) return;
    if (ev.participant && ev.participant.local) {
      if (type === 'video' && localEl) { localEl.muted = true; attach(localEl, new MediaStream([track]), h); }
      return;
    }
    if (type === 'screenVideo') {
      h.onScreenTrack(new MediaStream([track]));
    } else if (type === 'video' || type === 'audio') {
      remoteCamera.getTracks().filter((t) => t.kind === track.kind).forEach((t) => remoteCamera.removeTrack(t));
      remoteCamera.addTrack(track);
      attach(remoteEl, remoteCamera, h);
      h.onRemoteStream(remoteCamera);
      h.onState('connected');
    }
  }

  function onTrackStopped(ev) {
    if (!ev.participant || ev.participant.local) return;
    const type = trackType(ev);
    if (type === 'screenVideo') h.onScreenTrack(null);
    else if (ev.track) remoteCamera.removeTrack(ev.track);
  }

  async function start(localVideoEl, remoteVideoEl) {
    localEl = localVideoEl;
    remoteEl = remoteVideoEl;
    h.onState('connecting');
    const Daily = await ensureDaily();
    if (!Daily) {
      h.onState('error', {
        message: "Daily's video script (daily-js) is not available on this server, so the call cannot start. "
          + 'Ask your administrator to install it, or to use the built-in video provider.',
      });
      return call.local;
    }
    if (!join.room_url) {
      h.onState('error', { message: 'The video room could not be found (no room URL from the server).' });
      return call.local;
    }
    co = Daily.createCallObject({ dailyConfig: { avoidEval: true } });
    co.on('track-started', onTrackStarted)
      .on('track-stopped', onTrackStopped)
      .on('joined-meeting', () => h.onState('waiting'))
      .on('participant-joined', () => h.onState('connected'))
      .on('participant-left', () => {
        remoteCamera.getTracks().forEach((t) => remoteCamera.removeTrack(t));
        h.onScreenTrack(null);
        h.onState('peer-left');
      })
      .on('left-meeting', () => h.onState('closed'))
      .on('camera-error', (ev) => {
        const refused = ev && ev.error && /permission|blocked/i.test(ev.error.type || '');
        const error = new Error((ev && ev.errorMsg) || 'camera error');
        error.name = refused ? 'NotAllowedError' : 'NotReadableError';
        call.local = { audio: false, video: false };
        h.onState('media-error', { error, audio: false, video: false });
      })
      .on('error', (ev) => h.onState('error', { message: (ev && ev.errorMsg) || 'The video service reported an error.' }));
    try {
      await co.join({ url: join.room_url, ...(join.token ? { token: join.token } : {}) });
    } catch (e) {
      h.onState('error', { message: `Could not join the video room: ${e && e.message ? e.message : e}` });
    }
    return call.local;
  }

  async function startScreenShare() {
    if (!co || sharing) return;
    await co.startScreenShare();
    sharing = true;
    h.onState('sharing');
  }

  function stopScreenShare() {
    if (!co || !sharing) return;
    co.stopScreenShare();
    sharing = false;
    h.onState('not-sharing');
  }

  async function leave() {
    if (closed) return;
    closed = true;
    if (co) {
      try { await co.leave(); } catch { /* already gone */ }
      try { co.destroy(); } catch { /* ignore */ }
    }
    if (localEl) localEl.srcObject = null;
    if (remoteEl) remoteEl.srcObject = null;
    h.onScreenTrack(null);
    h.onState('closed');
  }

  // Daily hides its peer connection; approximate from participants and the
  // decoded frames of our <video> elements.
  async function stats() {
    const out = { framesDecoded: 0, inboundVideoTracks: 0, outboundVideoTracks: 0 };
    if (!co) return out;
    const playable = (t) => t && t.state === 'playable';
    for (const p of Object.values(co.participants() || {})) {
      const t = p.tracks || {};
      const n = (playable(t.video) ? 1 : 0) + (playable(t.screenVideo) ? 1 : 0);
      if (p.local) out.outboundVideoTracks += n; else out.inboundVideoTracks += n;
    }
    for (const el of document.querySelectorAll('#remote-video, #remote-screen')) {
      if (el.getVideoPlaybackQuality) out.framesDecoded += el.getVideoPlaybackQuality().totalVideoFrames;
    }
    return out;
  }

  return call;
}
