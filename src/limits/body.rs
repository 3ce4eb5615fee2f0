//! A deadline on reading a request body. actix-web's own `client_request_timeout`
//! covers only the request head; without this a client that trickles its body at a
//! byte a second holds a connection (and a worker's attention) for as long as it likes.
//! Past the deadline the body stream fails, the extractor answers
//! `408 request_timeout` and the connection is closed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::HttpMessage;
use futures_util::Stream;

use crate::error::DEADLINE_PASSED;
use crate::support::Core;

/// A body stream that fails once `deadline` has passed.
struct Deadline<S> {
    inner: S,
    sleep: Pin<Box<tokio::time::Sleep>>,
    expired: bool,
}

impl<S> Stream for Deadline<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired {
            return Poll::Ready(None);
        }
        // The clock is looked at first: a trickle has a byte ready at every poll.
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.expired = true;
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                DEADLINE_PASSED,
            )))));
        }
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

/// Whether a request carries a body to read: WebSocket upgrades stream for as long as
/// the socket lives and are left alone, as are requests that announce no body.
fn has_body(req: &ServiceRequest) -> bool {
    if req.head().upgrade() {
        return false;
    }
    let headers = req.headers();
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    length.is_some_and(|n| n > 0) || headers.contains_key(header::TRANSFER_ENCODING)
}

/// Middleware: every request body must arrive within `BODY_READ_TIMEOUT_SECS` of the
/// request head.
pub async fn deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let timeout = req
        .app_data::<actix_web::web::Data<Core>>()
        .map(|core| core.config.body_read_timeout());
    if let Some(timeout) = timeout.filter(|_| has_body(&req)) {
        let inner = req.take_payload();
        let limited = Deadline {
            inner,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            expired: false,
        };
        req.set_payload(Payload::from(
            Box::pin(limited) as actix_http::BoxedPayloadStream
        ));
    }
    next.call(req).await
}
