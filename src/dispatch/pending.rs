//! One actor per request with an offer out: it owns the offer timer, so a timeout is
//! a message like any other and the dispatcher never polls clocks.

use actix::prelude::*;

use super::messages::{OfferExpired, StartOfferTimer, StopOfferTimer, StopRequest};
use crate::model::SessionId;

pub struct PendingRequest {
    session_id: SessionId,
    /// The dispatcher, known only as who hears of expiries (it owns this actor).
    expired: Recipient<OfferExpired>,
    offer_timer: Option<SpawnHandle>,
}

impl PendingRequest {
    pub fn new(session_id: SessionId, expired: Recipient<OfferExpired>) -> Self {
        PendingRequest {
            session_id,
            expired,
            offer_timer: None,
        }
    }
}

impl Actor for PendingRequest {
    type Context = Context<Self>;
}

impl Handler<StartOfferTimer> for PendingRequest {
    type Result = ();

    fn handle(&mut self, msg: StartOfferTimer, ctx: &mut Context<Self>) {
        if let Some(previous) = self.offer_timer.take() {
            ctx.cancel_future(previous);
        }
        let session_id = self.session_id;
        self.offer_timer = Some(ctx.run_later(msg.after, move |act, _| {
            act.offer_timer = None;
            act.expired.do_send(OfferExpired {
                session_id,
                offer_id: msg.offer_id,
            });
        }));
    }
}

impl Handler<StopOfferTimer> for PendingRequest {
    type Result = ();

    fn handle(&mut self, _: StopOfferTimer, ctx: &mut Context<Self>) {
        if let Some(timer) = self.offer_timer.take() {
            ctx.cancel_future(timer);
        }
    }
}

impl Handler<StopRequest> for PendingRequest {
    type Result = ();

    fn handle(&mut self, _: StopRequest, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
