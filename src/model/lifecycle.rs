//! The session state machine (DESIGN.md §5) as one pure table.
//!
//! Every guarded update in storage derives its `WHERE status IN (…)` from
//! [`Action::allowed_from`], and every 409 about a session's state is a [`Refusal`]
//! from [`transition`], so the rule, the guard and the message cannot drift apart.
//!
//! | from \ action | offer / decline | accept / take | join | start | end | cancel | wrap up / rate |
//! |---|---|---|---|---|---|---|---|
//! | pending    | pending | connecting | — | — | — | cancelled | — |
//! | connecting | — | — | connecting | active | completed | cancelled | — |
//! | active     | — | — | active | — | completed | — | — |
//! | completed  | — | — | — | — | — | — | completed |
//! | cancelled  | — | — | — | — | — | — | — |

use std::fmt;

use super::vocab::SessionStatus;

/// Something that may happen to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// The dispatcher reserves the request for one consultant.
    Offer,
    /// The offered consultant says no.
    Decline,
    /// The offered consultant says yes.
    Accept,
    /// A consultant or admin takes a waiting request from the queue.
    Take,
    /// A party asks for the call's credentials, or reports being in the call.
    Join,
    /// Both parties are in the call.
    Start,
    End,
    Cancel,
    /// The consultant records notes and the resolution after the call.
    WrapUp,
    Rate,
}

impl Action {
    pub const ALL: [Action; 10] = [
        Action::Offer,
        Action::Decline,
        Action::Accept,
        Action::Take,
        Action::Join,
        Action::Start,
        Action::End,
        Action::Cancel,
        Action::WrapUp,
        Action::Rate,
    ];

    fn verb(self) -> &'static str {
        match self {
            Action::Offer => "offer",
            Action::Decline => "decline",
            Action::Accept => "accept",
            Action::Take => "take",
            Action::Join => "join",
            Action::Start => "start",
            Action::End => "end",
            Action::Cancel => "cancel",
            Action::WrapUp => "wrap up",
            Action::Rate => "rate",
        }
    }

    /// The statuses this action may start from, in declaration order: the guard of
    /// the storage update that performs it.
    pub fn allowed_from(self) -> Vec<SessionStatus> {
        SessionStatus::ALL
            .iter()
            .copied()
            .filter(|from| next(*from, self).is_some())
            .collect()
    }
}

/// The table itself: where `action` takes a session in status `from`, if anywhere.
fn next(from: SessionStatus, action: Action) -> Option<SessionStatus> {
    use Action as A;
    use SessionStatus as S;
    match (from, action) {
        (S::Pending, A::Offer | A::Decline) => Some(S::Pending),
        (S::Pending, A::Accept | A::Take) => Some(S::Connecting),
        (S::Pending | S::Connecting, A::Cancel) => Some(S::Cancelled),
        (S::Connecting, A::Join) => Some(S::Connecting),
        (S::Active, A::Join) => Some(S::Active),
        (S::Connecting, A::Start) => Some(S::Active),
        (S::Connecting | S::Active, A::End) => Some(S::Completed),
        (S::Completed, A::WrapUp | A::Rate) => Some(S::Completed),
        _ => None,
    }
}

/// Why an action is not possible in a session's current status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub action: Action,
    pub status: SessionStatus,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let allowed: Vec<&str> = self
            .action
            .allowed_from()
            .iter()
            .map(|s| s.as_str())
            .collect();
        write!(
            f,
            "cannot {} a session that is {} (only when {})",
            self.action.verb(),
            self.status,
            allowed.join(" or ")
        )
    }
}

/// `(status, action) → next status | refusal`.
pub fn transition(from: SessionStatus, action: Action) -> Result<SessionStatus, Refusal> {
    next(from, action).ok_or(Refusal {
        action,
        status: from,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use SessionStatus as S;

    #[test]
    fn the_documented_table() {
        assert_eq!(transition(S::Pending, Action::Accept), Ok(S::Connecting));
        assert_eq!(transition(S::Pending, Action::Take), Ok(S::Connecting));
        assert_eq!(transition(S::Connecting, Action::Start), Ok(S::Active));
        assert_eq!(transition(S::Active, Action::End), Ok(S::Completed));
        assert_eq!(transition(S::Connecting, Action::Cancel), Ok(S::Cancelled));
        assert!(transition(S::Active, Action::Cancel).is_err());
        assert!(transition(S::Completed, Action::End).is_err());
        assert!(transition(S::Cancelled, Action::Rate).is_err());
    }

    #[test]
    fn guards_are_derived_from_the_table() {
        assert_eq!(Action::End.allowed_from(), vec![S::Connecting, S::Active]);
        assert_eq!(
            Action::Cancel.allowed_from(),
            vec![S::Pending, S::Connecting]
        );
        assert_eq!(Action::Accept.allowed_from(), vec![S::Pending]);
        for action in Action::ALL {
            for from in S::ALL {
                assert_eq!(
                    action.allowed_from().contains(from),
                    transition(*from, action).is_ok()
                );
            }
        }
    }

    #[test]
    fn finished_sessions_never_become_live_again() {
        for action in Action::ALL {
            for from in S::FINISHED {
                if let Ok(to) = transition(from, action) {
                    assert!(!to.is_live(), "{action:?} revives a {from} session");
                }
            }
        }
    }

    #[test]
    fn refusals_say_what_is_needed() {
        let r = transition(S::Completed, Action::Accept).unwrap_err();
        assert_eq!(
            r.to_string(),
            "cannot accept a session that is completed (only when pending)"
        );
    }
}
