//! One actor per WebSocket connection. It registers itself in `started()` and
//! deregisters in `stopping()` (so the registry never holds a dead socket), keeps a
//! heartbeat, parses client frames, and pushes what the fan-out sends it with its own
//! `seq`. A socket opened with `?since=<event_id>` first replays what it missed
//! (see `replay`) while live frames wait in its mailbox.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web_actors::ws;
use chrono::NaiveDateTime;

use super::fanout::{deliveries, visible_to};
use super::fragments::{Assembled, Reassembler};
use super::frames::{stamp, ClientFrame, ServerEvent};
use super::registry::{Closing, Outbound, SocketEntry};
use super::Sockets;
use crate::db::models::User;
use crate::db::repo;
use crate::dispatch::messages::PlaceOfRequester;
use crate::error::ApiError;
use crate::limits::FrameBudget;
use crate::model::{EventId, Role, SessionId};
use crate::support::{calls, consultants, offers};

/// How often the server pings; a client silent for `WS_CLIENT_TIMEOUT_SECS` is dead.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// The largest client message we read, whole or reassembled from fragments;
/// signalling payloads (SDP) fit comfortably.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// How far back a resuming socket may be: more events than this since its `since`
/// (all users' events, not only its own) and it refetches instead.
pub const MAX_REPLAY_EVENTS: i64 = 10_000;

pub struct WsSession {
    user: User,
    token_hash: String,
    token_expires_at: NaiveDateTime,
    sockets: Arc<Sockets>,
    id: u64,
    seq: u64,
    last_heard: Instant,
    broadcasts: bool,
    since: Option<EventId>,
    /// Live frames of events at or below this id were part of the replay.
    replayed_upto: Option<EventId>,
    frames: FrameBudget,
    fragments: Reassembler,
}

/// The reply to a client frame, delivered back to the socket after async work.
#[derive(Message)]
#[rtype(result = "()")]
struct FrameOutcome(Result<(), ApiError>);

/// What a resuming socket gets before live frames.
enum Replay {
    Frames {
        frames: Vec<Arc<str>>,
        to: EventId,
    },
    Resync {
        last_event_id: EventId,
        reason: &'static str,
    },
}

/// Who a socket is, for deciding what it may see.
#[derive(Clone, Copy)]
struct Viewer {
    user: crate::model::UserId,
    role: Role,
    broadcasts: bool,
}

pub struct Opening {
    pub user: User,
    pub token_hash: String,
    pub token_expires_at: NaiveDateTime,
    pub broadcasts: bool,
    pub since: Option<EventId>,
}

impl WsSession {
    pub fn new(opening: Opening, sockets: Arc<Sockets>) -> WsSession {
        WsSession {
            frames: FrameBudget::new(&sockets.core.config),
            fragments: Reassembler::new(MAX_FRAME_BYTES),
            user: opening.user,
            token_hash: opening.token_hash,
            token_expires_at: opening.token_expires_at,
            sockets,
            id: 0,
            seq: 0,
            last_heard: Instant::now(),
            broadcasts: opening.broadcasts,
            since: opening.since,
            replayed_upto: None,
        }
    }

    fn send_event(&mut self, ctx: &mut ws::WebsocketContext<Self>, event: &ServerEvent) {
        let encoded = event.encode();
        self.send_encoded(ctx, &encoded);
    }

    fn send_encoded(&mut self, ctx: &mut ws::WebsocketContext<Self>, encoded: &str) {
        self.seq += 1;
        ctx.text(stamp(encoded, self.seq));
    }

    fn send_error(&mut self, ctx: &mut ws::WebsocketContext<Self>, error: &ApiError) {
        let event = ServerEvent::Error {
            error: error.code(),
            message: error.to_string(),
        };
        self.send_event(ctx, &event);
    }

    fn close(&mut self, ctx: &mut ws::WebsocketContext<Self>, closing: Closing) {
        ctx.close(Some(ws::CloseReason {
            code: ws::CloseCode::Other(closing.code()),
            description: Some(closing.reason().to_string()),
        }));
        ctx.stop();
    }

    fn heartbeat(&self, ctx: &mut ws::WebsocketContext<Self>) {
        let timeout = self.sockets.core.config.ws_client_timeout();
        ctx.run_interval(HEARTBEAT_INTERVAL, move |act, ctx| {
            if act.last_heard.elapsed() > timeout {
                tracing::info!(
                    user_id = act.user.id.0,
                    "websocket heartbeat missed; closing"
                );
                ctx.stop();
                return;
            }
            ctx.ping(b"");
        });
    }

    /// The token's own expiry closes the socket like a revocation does.
    fn expire_with_token(&self, ctx: &mut ws::WebsocketContext<Self>) {
        let left = (self.token_expires_at - repo::now())
            .to_std()
            .unwrap_or_default();
        ctx.run_later(left, |act, ctx| {
            act.close(ctx, Closing::SignedOut("your sign-in expired"))
        });
    }

    fn resume(&mut self, since: EventId, ctx: &mut ws::WebsocketContext<Self>) {
        let sockets = self.sockets.clone();
        let viewer = Viewer {
            user: self.user.id,
            role: self.user.role,
            broadcasts: self.broadcasts,
        };
        // `wait`: live frames queue in the mailbox until the replay has gone out.
        ctx.wait(
            async move { replay(&sockets, viewer, since).await }
                .into_actor(self)
                .map(move |outcome, act, ctx| match outcome {
                    Ok(Replay::Frames { frames, to }) => {
                        for frame in &frames {
                            act.send_encoded(ctx, frame);
                        }
                        act.replayed_upto = Some(to);
                        act.send_event(ctx, &ServerEvent::Resumed { from: since, to });
                    }
                    Ok(Replay::Resync {
                        last_event_id,
                        reason,
                    }) => act.send_event(
                        ctx,
                        &ServerEvent::ResyncRequired {
                            since,
                            last_event_id,
                            reason,
                        },
                    ),
                    Err(e) => {
                        let last_event_id = act.sockets.core.hub.last_delivered();
                        tracing::warn!(error = %e, "replay failed; asking the client to refetch");
                        act.send_event(
                            ctx,
                            &ServerEvent::ResyncRequired {
                                since,
                                last_event_id,
                                reason: "the missed events could not be read",
                            },
                        );
                    }
                }),
        );
    }

    /// A waiting requester's socket hears its place in line at once.
    fn send_place(&self, ctx: &mut ws::WebsocketContext<Self>) {
        if !self.user.role.requests_support() {
            return;
        }
        let ask = self.sockets.dispatcher.send(PlaceOfRequester {
            requester_id: self.user.id,
        });
        ctx.spawn(ask.into_actor(self).map(|reply, act, ctx| {
            if let Ok(Some(place)) = reply {
                act.send_event(
                    ctx,
                    &ServerEvent::QueuePositionUpdate {
                        session_id: place.session_id,
                        position: place.position,
                        estimated_wait_seconds: place.estimated_wait_seconds,
                    },
                );
            }
        }));
    }

    fn handle_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        if text.len() > MAX_FRAME_BYTES {
            self.send_error(
                ctx,
                &ApiError::PayloadTooLarge(format!(
                    "frames are limited to {MAX_FRAME_BYTES} bytes"
                )),
            );
            return;
        }
        let frame = match ClientFrame::parse(text) {
            Ok(frame) => frame,
            Err(e) => {
                self.send_error(ctx, &ApiError::BadRequest(format!("bad frame: {e}")));
                return;
            }
        };
        match frame {
            ClientFrame::Ping(_) => self.send_event(ctx, &ServerEvent::Pong {}),
            ClientFrame::Signal(s) => self.relay_signal(s.session_id, s.payload, ctx),
            other => self.act_on(other, ctx),
        }
    }

    /// WebRTC signalling goes socket to socket: only the other party of a call in
    /// progress receives it.
    fn relay_signal(
        &mut self,
        session_id: SessionId,
        payload: serde_json::Value,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let sockets = self.sockets.clone();
        let user = self.user.clone();
        let work = async move {
            let other = calls::signal_target(&sockets.core, &user, session_id).await?;
            sockets.registry.send_to_user(
                other,
                &ServerEvent::Signal {
                    session_id,
                    from: user.id,
                    payload,
                },
            );
            Ok(())
        };
        self.run(work, ctx);
    }

    fn act_on(&mut self, frame: ClientFrame, ctx: &mut ws::WebsocketContext<Self>) {
        let sockets = self.sockets.clone();
        let user = self.user.clone();
        let work = async move {
            let core = &sockets.core;
            match frame {
                ClientFrame::Presence(data) => {
                    if user.role != Role::Consultant {
                        return Err(ApiError::Forbidden(
                            "only consultants have a presence status".into(),
                        ));
                    }
                    consultants::set_status(core, user.id, data.status, user.id).await?;
                }
                ClientFrame::Accept(r) => {
                    offers::accept(core, &user, r.session_id).await?;
                }
                ClientFrame::Decline(r) => offers::decline(core, &user, r.session_id).await?,
                ClientFrame::CallJoined(r) => calls::call_joined(core, &user, r.session_id).await?,
                ClientFrame::CallLeft(r) => calls::call_left(core, &user, r.session_id).await?,
                ClientFrame::Ping(_) | ClientFrame::Signal(_) => {}
            }
            Ok(())
        };
        self.run(work, ctx);
    }

    /// Runs a frame's work beside the socket; an error comes back as an error frame.
    fn run(
        &self,
        work: impl std::future::Future<Output = Result<(), ApiError>> + 'static,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let me = ctx.address();
        actix::spawn(async move {
            me.do_send(FrameOutcome(work.await));
        });
    }
}

/// Reads what a resuming socket missed: every event after `since` up to the last
/// one delivered live, that this viewer may see, as frames.
async fn replay(sockets: &Sockets, viewer: Viewer, since: EventId) -> Result<Replay, ApiError> {
    let core = &sockets.core;
    let upto = core.hub.last_delivered();
    let floor = repo::events::replay_floor(&core.db).await?;
    if since < floor {
        return Ok(Replay::Resync {
            last_event_id: upto,
            reason: "that point of the stream is no longer kept",
        });
    }
    if since >= upto {
        return Ok(Replay::Frames {
            frames: Vec::new(),
            to: since,
        });
    }
    let rows = repo::events::range(&core.db, since, Some(upto), MAX_REPLAY_EVENTS + 1).await?;
    if rows.len() as i64 > MAX_REPLAY_EVENTS {
        return Ok(Replay::Resync {
            last_event_id: upto,
            reason: "too much has happened since; refetch",
        });
    }
    let mut ids: Vec<SessionId> = rows.iter().filter_map(|r| r.session_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let sessions: HashMap<SessionId, _> = repo::events::sessions_of(&core.db, &ids)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    let mut frames = Vec::new();
    for row in rows {
        let event = match row.to_event() {
            Ok(event) => event,
            Err(e) => {
                tracing::error!(error = %e, "unreadable event left out of a replay");
                continue;
            }
        };
        let session = event.session_id.and_then(|id| sessions.get(&id));
        for (audience, frame) in deliveries(&event, session) {
            if visible_to(&audience, viewer.user, viewer.role, viewer.broadcasts) {
                frames.push(frame.encode_for(event.id));
            }
        }
    }
    Ok(Replay::Frames { frames, to: upto })
}

impl Actor for WsSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.id = self.sockets.registry.register(SocketEntry {
            user_id: self.user.id,
            role: self.user.role,
            token_hash: self.token_hash.clone(),
            recipient: ctx.address().recipient(),
            broadcasts: self.broadcasts,
        });
        self.sockets.core.metrics.ws_connections.inc();
        self.sockets
            .presences
            .socket_opened(self.user.id, self.user.role);
        self.heartbeat(ctx);
        self.expire_with_token(ctx);
        // Read after registering: see `Hub::last_delivered`.
        let last_event_id = self.sockets.core.hub.last_delivered();
        let hello = ServerEvent::Hello {
            user: self.user.clone(),
            last_event_id,
        };
        self.send_event(ctx, &hello);
        if let Some(since) = self.since {
            self.resume(since, ctx);
        }
        self.send_place(ctx);
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        self.sockets.registry.unregister(self.id);
        self.sockets.core.metrics.ws_connections.dec();
        self.sockets.presences.socket_closed(self.user.id);
        Running::Stop
    }
}

impl Handler<Outbound> for WsSession {
    type Result = ();
    fn handle(&mut self, msg: Outbound, ctx: &mut Self::Context) {
        match msg {
            Outbound::Frame { encoded, event_id } => {
                let replayed = matches!(
                    (event_id, self.replayed_upto),
                    (Some(id), Some(upto)) if id <= upto
                );
                if !replayed {
                    self.send_encoded(ctx, &encoded);
                }
            }
            Outbound::Close(closing) => self.close(ctx, closing),
        }
    }
}

impl Handler<FrameOutcome> for WsSession {
    type Result = ();
    fn handle(&mut self, msg: FrameOutcome, ctx: &mut Self::Context) {
        if let Err(error) = msg.0 {
            self.send_error(ctx, &error);
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsSession {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        if let Err(reason) = self.frames.admit() {
            tracing::info!(
                user_id = self.user.id.0,
                "websocket over its frame rate; closing"
            );
            ctx.close(Some(ws::CloseReason {
                code: ws::CloseCode::Policy,
                description: Some(reason),
            }));
            ctx.stop();
            return;
        }
        match msg {
            Ok(ws::Message::Text(text)) => self.handle_text(&text, ctx),
            Ok(ws::Message::Ping(bytes)) => ctx.pong(&bytes),
            Ok(ws::Message::Pong(_)) => {}
            Ok(ws::Message::Binary(_)) => {
                self.send_error(
                    ctx,
                    &ApiError::BadRequest("send JSON text frames, not binary".into()),
                );
            }
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(ws::Message::Continuation(item)) => match self.fragments.push(item) {
                Ok(Assembled::Text(text)) => self.handle_text(&text, ctx),
                Ok(Assembled::Binary) => self.send_error(
                    ctx,
                    &ApiError::BadRequest("send JSON text frames, not binary".into()),
                ),
                Ok(Assembled::Partial) => {}
                Err(e) => self.send_error(ctx, &e.into()),
            },
            Ok(ws::Message::Nop) => {}
            Err(e) => {
                tracing::info!(user_id = self.user.id.0, error = %e, "websocket protocol error; closing");
                ctx.stop();
            }
        }
    }
}
