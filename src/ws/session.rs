//! One actor per WebSocket connection. It registers itself in `started()` and
//! deregisters in `stopping()` (so the registry never holds a dead socket), keeps a
//! heartbeat, parses client frames and pushes server events with its own `seq`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web_actors::ws;

use super::fragments::{Assembled, Reassembler};
use super::frames::{stamp, ClientFrame, ServerEvent};
use super::registry::{Push, SocketEntry};
use crate::db::models::{Role, User};
use crate::dispatch::dispatcher::Dispatcher;
use crate::dispatch::presence::{ConsultantPresence, SocketClosed, SocketOpened};
use crate::dispatch::service;
use crate::error::ApiError;
use crate::limits::FrameBudget;
use crate::state::Core;

/// How often the server pings; a client silent for `WS_CLIENT_TIMEOUT_SECS` is dead.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// The largest client message we read, whole or reassembled from fragments;
/// signalling payloads (SDP) fit comfortably.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

pub struct WsSession {
    user: User,
    core: Arc<Core>,
    dispatcher: Addr<Dispatcher>,
    id: u64,
    seq: u64,
    last_heard: Instant,
    presence: Option<Addr<ConsultantPresence>>,
    broadcasts: bool,
    frames: FrameBudget,
    fragments: Reassembler,
}

/// The reply to a client frame, delivered back to the socket after async work.
#[derive(Message)]
#[rtype(result = "()")]
struct FrameOutcome(Result<Option<ServerEvent>, ApiError>);

impl WsSession {
    pub fn new(
        user: User,
        core: Arc<Core>,
        dispatcher: Addr<Dispatcher>,
        broadcasts: bool,
    ) -> WsSession {
        WsSession {
            user,
            dispatcher,
            id: 0,
            seq: 0,
            last_heard: Instant::now(),
            presence: None,
            broadcasts,
            frames: FrameBudget::new(&core.config),
            fragments: Reassembler::new(MAX_FRAME_BYTES),
            core,
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

    fn heartbeat(&self, ctx: &mut ws::WebsocketContext<Self>) {
        let timeout = self.core.config.ws_client_timeout();
        ctx.run_interval(HEARTBEAT_INTERVAL, move |act, ctx| {
            if act.last_heard.elapsed() > timeout {
                tracing::info!(user_id = act.user.id, "websocket heartbeat missed; closing");
                ctx.stop();
                return;
            }
            ctx.ping(b"");
        });
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
        if let ClientFrame::Ping(_) = frame {
            self.send_event(ctx, &ServerEvent::Pong {});
            return;
        }
        let core = self.core.clone();
        let dispatcher = self.dispatcher.clone();
        let user = self.user.clone();
        let work = async move {
            match frame {
                ClientFrame::Ping(_) => Ok(None),
                ClientFrame::Presence(data) => {
                    if !matches!(user.role, Role::Consultant) {
                        return Err(ApiError::Forbidden(
                            "only consultants have a presence status".into(),
                        ));
                    }
                    let status = service::parse_settable_status(&data.status)?;
                    service::set_status(&core, &dispatcher, user.id, status).await?;
                    Ok(None)
                }
                ClientFrame::Accept(r) => service::accept(&core, &dispatcher, &user, r.session_id)
                    .await
                    .map(|_| None),
                ClientFrame::Decline(r) => {
                    service::decline(&core, &dispatcher, &user, r.session_id)
                        .await
                        .map(|_| None)
                }
                ClientFrame::Signal(s) => service::signal(&core, &user, s.session_id, s.payload)
                    .await
                    .map(|_| None),
                ClientFrame::CallJoined(r) => service::call_joined(&core, &user, r.session_id)
                    .await
                    .map(|_| None),
                ClientFrame::CallLeft(r) => service::call_left(&core, &user, r.session_id)
                    .await
                    .map(|_| None),
            }
        };
        let me = ctx.address();
        actix::spawn(async move {
            let outcome = work.await;
            me.do_send(FrameOutcome(outcome));
        });
    }
}

impl Actor for WsSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.id = self.core.registry.register(SocketEntry {
            user_id: self.user.id,
            role: self.user.role,
            recipient: ctx.address().recipient(),
            broadcasts: self.broadcasts,
        });
        self.core.metrics.ws_connections.inc();
        self.heartbeat(ctx);
        let hello = ServerEvent::Hello {
            user: self.user.clone(),
        };
        self.send_event(ctx, &hello);
        if self.user.role == Role::Consultant {
            let presence = ConsultantPresence::for_consultant(
                self.user.id,
                &self.dispatcher,
                &self.core.registry,
                &self.core.presences,
                self.core.config.presence_grace(),
            );
            presence.do_send(SocketOpened);
            self.presence = Some(presence);
        }
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        self.core.registry.unregister(self.id);
        self.core.metrics.ws_connections.dec();
        if let Some(presence) = self.presence.take() {
            presence.do_send(SocketClosed);
        }
        Running::Stop
    }
}

impl Handler<Push> for WsSession {
    type Result = ();
    fn handle(&mut self, msg: Push, ctx: &mut Self::Context) {
        self.send_encoded(ctx, &msg.0);
    }
}

impl Handler<FrameOutcome> for WsSession {
    type Result = ();
    fn handle(&mut self, msg: FrameOutcome, ctx: &mut Self::Context) {
        match msg.0 {
            Ok(Some(event)) => self.send_event(ctx, &event),
            Ok(None) => {}
            Err(error) => self.send_error(ctx, &error),
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsSession {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        if let Err(reason) = self.frames.admit() {
            tracing::info!(
                user_id = self.user.id,
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
                tracing::info!(user_id = self.user.id, error = %e, "websocket protocol error; closing");
                ctx.stop();
            }
        }
    }
}
