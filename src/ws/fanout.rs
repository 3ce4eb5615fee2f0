//! The fan-out: the one place that decides who hears of an event and builds the
//! frame they get. The live path ([`FanOut::deliver`], subscribed to the event hub)
//! and a resuming socket's replay ([`deliveries`] + [`visible_to`]) use the same two
//! functions, so a socket that resumes is told exactly what it would have been told
//! live.

use std::sync::Arc;

use super::frames::ServerEvent;
use super::registry::{Listeners, Outbound, Registry};
use crate::db::models::SessionRow;
use crate::events::{Notice, Published};
use crate::model::event::Event;
use crate::model::{EventData, Role, SessionId, UserId};
use crate::support::{rfc3339, MatchView, SessionView};

/// Who hears of one event: the users it is addressed to, and the role-wide
/// listeners it is broadcast to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audience {
    pub users: Vec<UserId>,
    pub listeners: Option<Listeners>,
}

impl Audience {
    fn users(users: impl IntoIterator<Item = UserId>) -> Audience {
        let mut list: Vec<UserId> = Vec::with_capacity(2);
        for user in users {
            if !list.contains(&user) {
                list.push(user);
            }
        }
        Audience {
            users: list,
            listeners: None,
        }
    }

    fn and_listeners(mut self, listeners: Listeners) -> Audience {
        self.listeners = Some(listeners);
        self
    }
}

/// Who hears of `event`'s main frame. `session` is the session's row (as the event's
/// transaction left it live, as it is now on replay).
fn audience(event: &Event, session: Option<&SessionRow>) -> Audience {
    let consultant = event.consultant_id;
    match &event.data {
        EventData::Requested => Audience::default().and_listeners(Listeners::Desk),
        EventData::Offered { .. }
        | EventData::Declined { .. }
        | EventData::OfferTimedOut { .. }
        | EventData::OfferRescinded { .. } => Audience::users(consultant),
        EventData::Accepted { .. }
        | EventData::Taken
        | EventData::Started
        | EventData::Ended
        | EventData::WrappedUp { .. } => {
            Audience::users(session.into_iter().flat_map(SessionRow::parties))
        }
        EventData::Cancelled { .. } => {
            let requester = session.map(|s| s.requester_id);
            Audience::users(requester.into_iter().chain(consultant)).and_listeners(Listeners::Desk)
        }
        EventData::PartyLeft { user_id } | EventData::PartyReturned { user_id } => Audience::users(
            session
                .into_iter()
                .flat_map(SessionRow::parties)
                .filter(|p| p != user_id),
        ),
        EventData::ConsultantStatus { .. } => {
            Audience::default().and_listeners(Listeners::Everyone)
        }
        EventData::Joined
        | EventData::Left
        | EventData::Rated { .. }
        | EventData::MeetingStarted { .. }
        | EventData::MeetingEnded { .. } => Audience::default(),
    }
}

/// Whether a socket of this user (with or without role-wide broadcasts) hears of it.
pub fn visible_to(audience: &Audience, user: UserId, role: Role, broadcasts: bool) -> bool {
    audience.users.contains(&user)
        || (broadcasts && audience.listeners.is_some_and(|l| l.includes(role)))
}

/// The frame an event about a session becomes, if any.
fn frame_of(event: &Event, session: Option<&SessionRow>) -> Option<ServerEvent> {
    let session_id = event.session_id?;
    let view = || session.map(SessionView::from_row);
    Some(match &event.data {
        EventData::Requested => ServerEvent::SupportRequestNew {
            session: view()?,
            position: None,
        },
        EventData::Offered {
            offer_id,
            expires_at,
            tier,
            score,
            reasons,
            ..
        } => ServerEvent::SupportRequestOffered {
            session: view()?,
            offer_id: *offer_id,
            expires_at: rfc3339(*expires_at),
            match_info: MatchView {
                tier: *tier,
                score: *score,
                reasons: reasons.clone(),
            },
        },
        EventData::Declined { .. } => revoked(session_id, "declined"),
        EventData::OfferTimedOut { .. } => revoked(session_id, "timeout"),
        EventData::OfferRescinded { reason, .. } => revoked(session_id, reason.wire()),
        EventData::Accepted { .. } | EventData::Taken => {
            ServerEvent::SupportRequestAccepted { session: view()? }
        }
        EventData::Started => ServerEvent::SupportSessionStarted { session: view()? },
        EventData::Ended => ServerEvent::SupportSessionEnded { session: view()? },
        EventData::WrappedUp { .. } => ServerEvent::SupportSessionWrappedUp { session: view()? },
        EventData::Cancelled { .. } => ServerEvent::SupportRequestCancelled { session_id },
        EventData::PartyLeft { user_id } => ServerEvent::SupportPartyLeft {
            session_id,
            user_id: *user_id,
        },
        EventData::PartyReturned { user_id } => ServerEvent::SupportPartyReturned {
            session_id,
            user_id: *user_id,
        },
        EventData::ConsultantStatus { .. }
        | EventData::Joined
        | EventData::Left
        | EventData::Rated { .. }
        | EventData::MeetingStarted { .. }
        | EventData::MeetingEnded { .. } => return None,
    })
}

/// Consultant status events have no session; their frame is built here.
fn status_frame(event: &Event) -> Option<ServerEvent> {
    match (&event.data, event.consultant_id) {
        (EventData::ConsultantStatus { status }, Some(consultant_id)) => {
            Some(ServerEvent::ConsultantStatusChanged {
                consultant_id,
                status: *status,
            })
        }
        _ => None,
    }
}

/// Every frame an event becomes, each with who hears it. Most events are one frame;
/// a request cancelled while offered is also the offer's withdrawal for the
/// consultant who held it.
pub fn deliveries(event: &Event, session: Option<&SessionRow>) -> Vec<(Audience, ServerEvent)> {
    let mut out = Vec::with_capacity(2);
    if let (EventData::Cancelled { offer_id: Some(_) }, Some(session_id), Some(consultant)) =
        (&event.data, event.session_id, event.consultant_id)
    {
        out.push((
            Audience::users([consultant]),
            revoked(session_id, "cancelled"),
        ));
    }
    if let Some(frame) = status_frame(event).or_else(|| frame_of(event, session)) {
        out.push((audience(event, session), frame));
    }
    out
}

fn revoked(session_id: SessionId, reason: &'static str) -> ServerEvent {
    ServerEvent::SupportRequestOfferRevoked { session_id, reason }
}

/// The live fan-out, subscribed to the event hub.
pub struct FanOut {
    registry: Arc<Registry>,
}

impl FanOut {
    pub fn new(registry: Arc<Registry>) -> FanOut {
        FanOut { registry }
    }

    pub fn deliver(&self, published: &Published) {
        let session = published.session.as_deref();
        for (audience, frame) in deliveries(&published.event, session) {
            let outbound = Outbound::Frame {
                encoded: frame.encode_for(published.event.id),
                event_id: Some(published.event.id),
            };
            for user in &audience.users {
                self.registry.deliver_to_user(*user, &outbound);
            }
            if let Some(listeners) = audience.listeners {
                self.registry
                    .broadcast(&outbound, listeners, &audience.users);
            }
        }
    }

    pub fn notify(&self, notice: &Notice) {
        match notice {
            Notice::QueuePosition {
                requester_id,
                session_id,
                position,
                estimated_wait_seconds,
            } => self.registry.send_to_user(
                *requester_id,
                &ServerEvent::QueuePositionUpdate {
                    session_id: *session_id,
                    position: *position,
                    estimated_wait_seconds: *estimated_wait_seconds,
                },
            ),
        }
    }
}
