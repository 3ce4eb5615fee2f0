// call.js — the video call between a requester and a consultant.
// Joins the session's room (POST /join), runs the call through video.js,
// relays built-in WebRTC signalling over the WebSocket, and handles the end
// of the call (notes for the consultant, a rating for the requester).

import { api, requireUser, serverNow, showFatal } from '../api.js';
import { connectSocket } from '../socket.js';
import { createCall, describeMediaError } from '../video.js';
import {
  $, announce, clearMessage, showError, fmtClock, openDialog, closeDialog, URGENCY_LABELS,
} from '../ui.js';

const match = location.pathname.match(/^\/support\/call\/(\d+)\/?$/);
const sessionId = match ? Number(match[1]) : null;

const statusEl = $('#call-status');
const stateEl = $('#call-state');
const durationEl = $('#call-duration');
const mediaError = $('#media-error');
const callError = $('#call-error');
const live = $('#call-live');
const localVideo = $('#local-video');
const remoteVideo = $('#remote-video');
const remoteScreen = $('#remote-screen');
const screenTile = $('#screen-tile');
const remotePlaceholder = $('#remote-placeholder');
const localPlaceholder = $('#local-placeholder');
const btnMute = $('#btn-mute');
const btnCamera = $('#btn-camera');
const btnShare = $('#btn-share');
const btnPlay = $('#btn-play');
const btnEnd = $('#btn-end');
const endDialog = $('#end-dialog');
const partyNotice = $('#party-notice');
const wrapupForm = $('#wrapup-form');
const ratingDialog = $('#rating-dialog');

let me = null;
let session = null;
let role = 'observer'; // requester | consultant | observer (an admin who is neither party)
let socket = null;
let call = null;
let buffered = []; // signals that arrive before the call object exists
let joined = false;
let ended = false;
let mediaConnected = false;
let startedAt = null; // ms, server clock
let muted = false;
let cameraOff = false;
let endingByMe = false; // our POST /end is in flight: its WS echo may arrive before the reply

// ---- status line -------------------------------------------------------------

function setState(state, text) {
  statusEl.dataset.state = state;
  stateEl.textContent = text;
}

function startDuration(iso) {
  const t = iso ? Date.parse(iso) : NaN;
  if (!Number.isNaN(t)) startedAt = t;
  else if (startedAt === null) startedAt = serverNow();
}

// Stops ticking when the call ends, leaving the final length on screen.
setInterval(() => {
  if (startedAt !== null && !ended) durationEl.textContent = fmtClock((serverNow() - startedAt) / 1000);
}, 1000);

// ---- loading the session -------------------------------------------------------

// There is no single-session read in the API: a live session comes from
// /active, a finished one from our own history.
async function loadSession() {
  const a = await api('/api/support/active');
  if (a.session && a.session.id === sessionId) return a.session;
  let cursor = null;
  for (let page = 0; page < 5; page += 1) {
    const r = await api('/api/support/history', { query: { limit: 100, cursor } });
    const found = (r.sessions || []).find((s) => s.id === sessionId);
    if (found) return found;
    if (!r.next_cursor) break;
    cursor = r.next_cursor;
  }
  return null;
}

function renderMeta() {
  $('#call-title').textContent = `Support call #${session.id}`;
  $('#call-meta').textContent = `${session.department} · ${URGENCY_LABELS[session.urgency] || session.urgency}${session.issue_summary ? ` — ${session.issue_summary}` : ''}`;
  $('#remote-label').textContent = role === 'requester' ? 'Consultant' : 'Requester';
}

// ---- joining -------------------------------------------------------------------

async function join() {
  setState('connecting', 'Connecting…');
  let reply;
  try {
    reply = await api(`/api/support/join/${sessionId}`, { method: 'POST', body: {} });
  } catch (e) {
    if (e.status === 409 || e.status === 404) {
      // Most likely it ended or was cancelled while the page loaded.
      const s = await loadSession().catch(() => null);
      if (s && (s.status === 'completed' || s.status === 'cancelled')) { finishCall(s, 'load'); return; }
    }
    setState('ended', 'Could not join');
    showError(callError, e);
    if (e.status === 503 || e.status === 0) offerRetry();
    return;
  }

  call = createCall({ ...reply, session_id: sessionId, offerer: role === 'consultant' }, {
    onRemoteStream,
    onScreenTrack,
    onState,
    sendSignal: (payload) => socket.send('signal', { session_id: sessionId, payload }),
  });
  for (const p of buffered.splice(0)) call.handleSignal(p);
  btnEnd.disabled = false;

  const local = await call.start(localVideo, remoteVideo);
  if (ended) return;
  btnMute.disabled = !local.audio;
  btnCamera.disabled = !local.video;
  localPlaceholder.hidden = local.video;
  if (!local.video) localPlaceholder.textContent = 'No camera';
  btnShare.disabled = call.provider === 'builtin' && !(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
  socket.send('call_joined', { session_id: sessionId });
  joined = true;
}

function offerRetry() {
  const retry = document.createElement('button');
  retry.type = 'button';
  retry.className = 'btn btn-secondary';
  retry.textContent = 'Try again';
  retry.addEventListener('click', () => { retry.remove(); clearMessage(callError); join(); });
  callError.after(retry);
}

// ---- video callbacks -------------------------------------------------------------

function onRemoteStream(stream) {
  if (!stream) {
    remotePlaceholder.hidden = false;
    remotePlaceholder.textContent = 'Waiting for the other party to join…';
    return;
  }
  const hasVideo = stream.getVideoTracks().length > 0;
  remotePlaceholder.hidden = hasVideo;
  if (!hasVideo) remotePlaceholder.textContent = 'Audio only: the other party has no camera.';
  // Tracks can be added to the same stream later (e.g. Daily).
  stream.onaddtrack = () => { remotePlaceholder.hidden = stream.getVideoTracks().length > 0; };
}

function onScreenTrack(stream) {
  const showing = !!stream;
  if (remoteScreen.srcObject !== stream) remoteScreen.srcObject = stream || null;
  if (stream) remoteScreen.play().catch(() => {});
  if (screenTile.hidden === !showing) return;
  screenTile.hidden = !showing;
  $('#call-stage').classList.toggle('has-screen', showing);
  live.textContent = showing ? 'The other party is sharing their screen.' : 'Screen sharing stopped.';
}

function onState(name, detail = {}) {
  if (ended && name !== 'closed') return;
  switch (name) {
    case 'connecting':
      setState('connecting', 'Connecting…');
      break;
    case 'waiting':
      if (!mediaConnected) setState('connecting', 'Waiting for the other party to join…');
      break;
    case 'connected':
      mediaConnected = true;
      startDuration(session && session.started_at);
      setState('active', 'Active');
      // Connected but nothing to show: the other side joined without a camera.
      {
        const remote = remoteVideo.srcObject;
        remotePlaceholder.hidden = !!(remote && remote.getVideoTracks().length);
        if (!remotePlaceholder.hidden) {
          remotePlaceholder.textContent = remote && remote.getAudioTracks().length
            ? 'Audio only: the other party has no camera.'
            : 'Connected. The other party has no camera or microphone on.';
        }
      }
      break;
    case 'reconnecting':
      setState('reconnecting', 'Connection interrupted, reconnecting…');
      break;
    case 'peer-left':
      mediaConnected = false;
      setState('connecting', 'The other party left the call. Waiting for them to rejoin…');
      remotePlaceholder.hidden = false;
      remotePlaceholder.textContent = 'The other party left the call.';
      break;
    case 'media-error':
      mediaError.hidden = false;
      mediaError.textContent = describeMediaError(detail.error, detail);
      break;
    case 'sharing':
      btnShare.textContent = 'Stop sharing';
      btnShare.setAttribute('aria-pressed', 'true');
      live.textContent = 'You are sharing your screen.';
      break;
    case 'not-sharing':
      btnShare.textContent = 'Share screen';
      btnShare.setAttribute('aria-pressed', 'false');
      live.textContent = 'You stopped sharing your screen.';
      break;
    case 'autoplay-blocked':
      btnPlay.hidden = false;
      break;
    case 'error':
      announce(callError, detail.message || 'The call failed.', 'error');
      break;
    default:
      break;
  }
}

// ---- controls ----------------------------------------------------------------------

btnMute.addEventListener('click', () => {
  if (!call) return;
  muted = !muted;
  call.setMuted(muted);
  btnMute.textContent = muted ? 'Unmute' : 'Mute';
  btnMute.setAttribute('aria-pressed', String(muted));
  live.textContent = muted ? 'Microphone muted.' : 'Microphone on.';
});

btnCamera.addEventListener('click', () => {
  if (!call) return;
  cameraOff = !cameraOff;
  call.setCameraOff(cameraOff);
  btnCamera.textContent = cameraOff ? 'Camera on' : 'Camera off';
  btnCamera.setAttribute('aria-pressed', String(cameraOff));
  localPlaceholder.hidden = !cameraOff;
  localPlaceholder.textContent = 'Camera off';
  live.textContent = cameraOff ? 'Camera off.' : 'Camera on.';
});

btnShare.addEventListener('click', async () => {
  if (!call) return;
  if (call.sharing) { call.stopScreenShare(); return; }
  btnShare.disabled = true;
  try {
    await call.startScreenShare();
  } catch (e) {
    // Picking "Cancel" in the browser's picker is a refusal, not a failure.
    if (e && e.name === 'NotAllowedError') announce(callError, 'Screen sharing was cancelled.', 'info');
    else announce(callError, `Could not share your screen: ${e && e.message ? e.message : e}`, 'error');
  } finally {
    btnShare.disabled = false;
  }
});

btnPlay.addEventListener('click', () => {
  remoteVideo.play().catch(() => {});
  if (remoteScreen.srcObject) remoteScreen.play().catch(() => {});
  btnPlay.hidden = true;
});

// ---- ending ------------------------------------------------------------------------

function openEndDialog() {
  const byRequester = role === 'requester';
  $('#end-details').hidden = byRequester;
  $('#end-intro').textContent = byRequester
    ? 'End the call for both of you?'
    : 'This ends the call for both of you. Add a short note on the outcome.';
  clearMessage($('#end-error'));
  openDialog(endDialog);
}
btnEnd.addEventListener('click', openEndDialog);

// ---- the other party is gone ---------------------------------------------------

function showPartyLeft() {
  if (ended) return;
  const who = role === 'requester' ? 'The consultant' : 'The requester';
  $('#party-text').textContent = `${who} has been disconnected for a while (closed the page or lost the network). You can end the call, or keep waiting for them to come back.`;
  partyNotice.hidden = false;
  live.textContent = `${who} has left.`;
}

function hidePartyLeft() {
  partyNotice.hidden = true;
}

$('#party-end').addEventListener('click', () => { hidePartyLeft(); openEndDialog(); });
$('#party-wait').addEventListener('click', () => {
  hidePartyLeft();
  announce(callError, 'Still waiting for the other party to come back…', 'info');
});

$('#end-cancel').addEventListener('click', () => closeDialog(endDialog));

$('#end-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const confirm = $('#end-confirm');
  const body = {};
  if (role !== 'requester') {
    const notes = $('#resolution-notes').value.trim();
    if (notes) body.resolution_notes = notes;
    body.resolved = $('#resolved-yes').checked;
  }
  confirm.disabled = true;
  endingByMe = true;
  try {
    const r = await api(`/api/support/end/${sessionId}`, { method: 'POST', body });
    closeDialog(endDialog);
    await finishCall(r.session, 'me');
  } catch (e) {
    if (e.status === 409) {
      // Already ended by the other side.
      closeDialog(endDialog);
      const s = await loadSession().catch(() => null);
      await finishCall(s, 'peer');
    } else {
      endingByMe = false;
      showError($('#end-error'), e);
    }
  } finally {
    confirm.disabled = false;
  }
});

/** Leave the media, then show what comes next for this role. */
async function finishCall(s, how) {
  if (s) session = s;
  if (ended) return;
  ended = true;
  for (const b of [btnMute, btnCamera, btnShare, btnEnd]) b.disabled = true;
  btnPlay.hidden = true;
  mediaError.hidden = true;
  if (call) {
    await call.leave();
    if (joined) socket.send('call_left', { session_id: sessionId });
  }
  const status = session ? session.status : null;

  hidePartyLeft();
  const owesWrapUp = role === 'consultant' && status === 'completed' && session && !session.wrapped_up_at;
  if (how === 'me' && role !== 'requester' && !owesWrapUp) {
    location.assign(role === 'consultant' || (me && me.role === 'admin') ? '/support/queue' : '/support/history');
    return;
  }

  setState('ended', status === 'cancelled' ? 'Cancelled' : 'Call ended');
  let message;
  if (status === 'cancelled') message = 'This request was cancelled.';
  else if (how === 'peer') message = role === 'requester' ? 'The consultant ended the call.' : 'The requester ended the call.';
  else if (how === 'me') message = 'You ended the call.';
  else message = 'This call has already ended.';

  $('#call-ended').hidden = false;
  $('#call-stage').hidden = true;
  $('#call-controls').hidden = true;
  const primary = $('#ended-primary');
  if (role === 'consultant') { primary.href = '/support/queue'; primary.textContent = 'Back to the queue'; }

  if (owesWrapUp) {
    wrapupForm.hidden = false;
    $('#ended-message').textContent = `${message} Please record the outcome.`;
    $('#wrapup-notes').focus();
    return;
  }

  const canRate = role === 'requester' && status === 'completed' && (session.rating === null || session.rating === undefined);
  if (canRate) {
    const again = document.createElement('button');
    again.type = 'button';
    again.id = 'rate-again';
    again.className = 'btn btn-secondary';
    again.textContent = 'Rate this call';
    again.addEventListener('click', () => openDialog(ratingDialog));
    primary.after(again);
    $('#ended-message').textContent = `${message} Please rate your support.`;
    openDialog(ratingDialog);
  } else {
    $('#ended-message').textContent = message;
    $('#ended-title').focus();
  }
}

// ---- wrap-up (the consultant, after the requester ended) ------------------------------

wrapupForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const err = $('#wrapup-error');
  const chosen = wrapupForm.querySelector('input[name=wrapup-resolved]:checked');
  if (!chosen) {
    announce(err, 'Say whether the issue was resolved.', 'error');
    $('#wrapup-yes').focus();
    return;
  }
  const body = { resolved: chosen.value === 'yes' };
  const notes = $('#wrapup-notes').value.trim();
  if (notes) body.resolution_notes = notes;
  const submit = $('#wrapup-submit');
  submit.disabled = true;
  try {
    const r = await api(`/api/support/wrapup/${sessionId}`, { method: 'POST', body });
    session = r.session;
    location.assign('/support/queue');
  } catch (e) {
    if (e.status === 409) { location.assign('/support/queue'); return; } // already wrapped up
    showError(err, e);
    submit.disabled = false;
  }
});

// ---- rating ---------------------------------------------------------------------------

$('#rating-skip').addEventListener('click', () => closeDialog(ratingDialog));

$('#rating-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const chosen = ratingDialog.querySelector('input[name=rating]:checked');
  const err = $('#rating-error');
  if (!chosen) {
    announce(err, 'Choose a rating from 1 to 5 stars.', 'error');
    ratingDialog.querySelector('input[name=rating]').focus();
    return;
  }
  const body = { rating: Number(chosen.value) };
  const feedback = $('#feedback').value.trim();
  if (feedback) body.feedback = feedback;
  const submit = $('#rating-submit');
  submit.disabled = true;
  try {
    await api(`/api/support/rate/${sessionId}`, { method: 'POST', body });
    location.assign('/support/history');
  } catch (e) {
    if (e.status === 409) { location.assign('/support/history'); return; } // already rated
    showError(err, e);
    submit.disabled = false;
  }
});

// ---- live events -------------------------------------------------------------------------

function wireSocket() {
  socket.on('signal', (d) => {
    if (d.session_id !== sessionId || !d.payload) return;
    if (me && d.from === me.id) return;
    if (call) call.handleSignal(d.payload);
    else buffered.push(d.payload);
  });
  socket.on('support_session_started', (d) => {
    if (!d.session || d.session.id !== sessionId) return;
    session = d.session;
    if (session.started_at) startDuration(session.started_at);
  });
  socket.on('support_session_ended', (d) => {
    if (!d.session || d.session.id !== sessionId) return;
    if (endingByMe) closeDialog(endDialog);
    finishCall(d.session, endingByMe ? 'me' : 'peer');
  });
  socket.on('support_party_left', (d) => {
    if (d.session_id === sessionId && me && d.user_id !== me.id) showPartyLeft();
  });
  socket.on('support_party_returned', (d) => {
    if (d.session_id === sessionId && me && d.user_id !== me.id) hidePartyLeft();
  });
  socket.on('support_request_cancelled', (d) => {
    if (d.session_id === sessionId) finishCall({ ...(session || {}), status: 'cancelled' }, 'peer');
  });
  // Anything could have happened while we were offline: re-announce ourselves,
  // resync the media signalling and check the session still exists.
  socket.onResync(refetchSession);
  socket.onReconnect(async () => {
    if (ended) return;
    if (joined) socket.send('call_joined', { session_id: sessionId });
    if (call) call.resync();
    try {
      const s = await loadSession();
      if (s && (s.status === 'completed' || s.status === 'cancelled')) finishCall(s, 'peer');
      else if (s) session = s;
    } catch { /* try again on the next reconnect */ }
  });
}

// Leaving the page (reload, navigation): tell the server and the peer.
function refetchSession() {
  loadSession()
    .then((s) => {
      if (s && (s.status === 'completed' || s.status === 'cancelled')) finishCall(s, 'peer');
      else if (s) session = s;
    })
    .catch(() => { /* try again on the next reconnect */ });
}

window.addEventListener('pagehide', () => {
  if (ended || !call) return;
  if (joined) socket.send('call_left', { session_id: sessionId });
  call.leave();
});

// ---- start -----------------------------------------------------------------------------

async function main() {
  me = await requireUser();
  if (!sessionId) { showFatal('This call link is not valid.'); setState('ended', 'Invalid link'); return; }
  socket = connectSocket();
  wireSocket();

  try {
    session = await loadSession();
  } catch (e) {
    showError(callError, e);
    setState('ended', 'Could not load the session');
    return;
  }
  if (!session) {
    setState('ended', 'Not found');
    announce(callError, 'This support session was not found, or you are not part of it.', 'error');
    $('#call-stage').hidden = true;
    $('#call-controls').hidden = true;
    return;
  }
  role = session.requester_id === me.id ? 'requester' : session.consultant_id === me.id ? 'consultant' : 'observer';
  renderMeta();
  if (session.started_at) startDuration(session.started_at);

  switch (session.status) {
    case 'pending':
      if (role === 'requester') { location.replace('/support/request'); return; }
      setState('connecting', 'Not accepted yet');
      announce(callError, 'This request has not been accepted yet.', 'warning');
      return;
    case 'completed':
    case 'cancelled':
      finishCall(session, 'load');
      return;
    default:
      await join();
  }
}

main();
