//! Id newtypes: a session id cannot be passed where a user id is expected. Each is an
//! `i64` on the wire (serde transparent) and a `BIGINT` in storage
//! (`diesel-derive-newtype`), so queries take them directly.

use std::fmt;

use diesel_derive_newtype::DieselNewType;
use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            DieselNewType, utoipa::ToSchema,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }
    };
}

id_type!(
    /// A support session (a request, and the call it becomes).
    SessionId
);
id_type!(
    /// Any account: staff, leadership, consultant or admin.
    UserId
);
id_type!(HospitalId);
id_type!(
    /// One offer of one request to one consultant (a reservation with an outcome).
    OfferId
);
id_type!(
    /// One hospital's share of one pass of the retention job (`retention_runs`).
    RetentionRunId
);
id_type!(
    /// A position in the global event stream; increasing in commit order.
    EventId
);
