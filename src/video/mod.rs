//! Video calls between hospital staff and a consultant.
//!
//! The dispatch code talks only to [`VideoProvider`], so a deployment can run on
//! Daily.co (hosted, HIPAA-capable) or on the built-in peer-to-peer WebRTC path
//! without anything above this module caring which one is configured.

pub mod builtin;
pub mod daily;
pub mod provider;
/// A local stand-in that speaks Daily's REST API, for tests: compiled only into
/// test builds (`--features standin`), never into the release binary.
#[cfg(any(test, feature = "standin"))]
pub mod standin;

pub use builtin::BuiltinProvider;
pub use daily::{
    sign_webhook, user_id_from_uuid_like, uuid_like_user_id, verify_webhook_signature, DailyConfig,
    DailyProvider, WebhookEvent, WebhookEventKind, WebhookPayload, WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER,
};
pub use provider::*;
#[cfg(any(test, feature = "standin"))]
pub use standin::DailyStandIn;
