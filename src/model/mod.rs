//! The bottom layer: the words every other layer speaks. Ids, the stored
//! vocabularies, the session state machine and the events of the stream.
//!
//! Nothing here does I/O or knows about actors; storage (`db`) maps these types to
//! columns once, with diesel's `ToSql`/`FromSql`, so every layer above reads typed
//! values and a value the code does not know is an error at the storage boundary.

pub mod event;
pub mod ids;
pub mod lifecycle;
pub mod stats;
pub mod vocab;

pub use event::{EventData, EventKind, RescindReason};
pub use ids::{EventId, HospitalId, OfferId, RetentionRunId, SessionId, UserId};
pub use lifecycle::{Action, Refusal};
pub use vocab::{
    AdminAction, ConsultantStatus, MatchTier, OfferOutcome, Plan, Proficiency, RetentionTrigger,
    Role, SessionStatus, Urgency,
};
