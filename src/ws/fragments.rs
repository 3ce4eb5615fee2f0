//! Reassembly of fragmented WebSocket messages (RFC 6455 §5.4). The codec hands
//! fragments over one by one (`FirstText`, `Continue`…, `Last`); this joins them into
//! the message they make, up to the same size limit as a single frame, so a client
//! whose library fragments large messages is served like any other, and one that
//! sends an endless message gets an error instead of growing our memory.
//!
//! Pure: no actix, no I/O; the session feeds it and acts on what comes back.

use actix_http::ws::Item;

/// What a fragment completes.
#[derive(Debug, PartialEq, Eq)]
pub enum Assembled {
    /// More fragments are due.
    Partial,
    /// A whole text message.
    Text(String),
    /// A whole binary message (which the protocol does not use).
    Binary,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FragmentError {
    #[error("fragmented message is over the {0} byte limit")]
    TooLarge(usize),
    #[error("fragmented message is not valid UTF-8 text")]
    NotText,
}

impl From<FragmentError> for crate::error::ApiError {
    fn from(error: FragmentError) -> Self {
        match error {
            FragmentError::TooLarge(_) => {
                crate::error::ApiError::PayloadTooLarge(error.to_string())
            }
            FragmentError::NotText => crate::error::ApiError::BadRequest(error.to_string()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
}

#[derive(Debug)]
enum State {
    Idle,
    Collecting {
        kind: Kind,
        buffer: Vec<u8>,
    },
    /// The message went over the limit: its remaining fragments are dropped unread.
    Discarding,
}

#[derive(Debug)]
pub struct Reassembler {
    max_bytes: usize,
    state: State,
}

impl Reassembler {
    pub fn new(max_bytes: usize) -> Reassembler {
        Reassembler {
            max_bytes,
            state: State::Idle,
        }
    }

    /// Takes the next fragment. An error is reported once per message; the rest of
    /// that message is then ignored up to its last fragment.
    pub fn push(&mut self, item: Item) -> Result<Assembled, FragmentError> {
        let (first, data, last) = match item {
            Item::FirstText(data) => (Some(Kind::Text), data, false),
            Item::FirstBinary(data) => (Some(Kind::Binary), data, false),
            Item::Continue(data) => (None, data, false),
            Item::Last(data) => (None, data, true),
        };
        // The codec refuses a first fragment while another message is open and a
        // continuation without a first, so a new first always starts afresh here.
        if let Some(kind) = first {
            self.state = State::Collecting {
                kind,
                buffer: Vec::new(),
            };
        }
        let outcome = match &mut self.state {
            State::Idle | State::Discarding => Ok(Assembled::Partial),
            State::Collecting { buffer, .. } if buffer.len() + data.len() > self.max_bytes => {
                Err(FragmentError::TooLarge(self.max_bytes))
            }
            State::Collecting { buffer, .. } => {
                buffer.extend_from_slice(&data);
                Ok(Assembled::Partial)
            }
        };
        if outcome.is_err() {
            self.state = State::Discarding;
        }
        if !last || outcome.is_err() {
            if last {
                self.state = State::Idle;
            }
            return outcome;
        }
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Collecting {
                kind: Kind::Text,
                buffer,
            } => String::from_utf8(buffer)
                .map(Assembled::Text)
                .map_err(|_| FragmentError::NotText),
            State::Collecting {
                kind: Kind::Binary, ..
            } => Ok(Assembled::Binary),
            State::Idle | State::Discarding => Ok(Assembled::Partial),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::web::Bytes;
    use proptest::prelude::*;

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    #[test]
    fn fragments_join_into_one_message() {
        let mut r = Reassembler::new(64);
        assert_eq!(
            r.push(Item::FirstText(b("{\"type\":"))),
            Ok(Assembled::Partial)
        );
        assert_eq!(
            r.push(Item::Continue(b("\"ping\""))),
            Ok(Assembled::Partial)
        );
        assert_eq!(
            r.push(Item::Last(b("}"))),
            Ok(Assembled::Text("{\"type\":\"ping\"}".into()))
        );
        assert_eq!(r.push(Item::FirstBinary(b("x"))), Ok(Assembled::Partial));
        assert_eq!(r.push(Item::Last(b("y"))), Ok(Assembled::Binary));
    }

    #[test]
    fn an_oversized_message_is_refused_once_and_the_next_one_works() {
        let mut r = Reassembler::new(8);
        r.push(Item::FirstText(b("12345"))).unwrap();
        assert_eq!(
            r.push(Item::Continue(b("6789"))),
            Err(FragmentError::TooLarge(8))
        );
        assert_eq!(r.push(Item::Continue(b("more"))), Ok(Assembled::Partial));
        assert_eq!(r.push(Item::Last(b("end"))), Ok(Assembled::Partial));
        r.push(Item::FirstText(b("ok"))).unwrap();
        assert_eq!(
            r.push(Item::Last(b("!"))),
            Ok(Assembled::Text("ok!".into()))
        );
    }

    #[test]
    fn text_split_inside_a_character_is_joined_and_broken_text_refused() {
        let mut r = Reassembler::new(64);
        let heart = "🩺".as_bytes();
        r.push(Item::FirstText(Bytes::copy_from_slice(&heart[..2])))
            .unwrap();
        assert_eq!(
            r.push(Item::Last(Bytes::copy_from_slice(&heart[2..]))),
            Ok(Assembled::Text("🩺".into()))
        );
        r.push(Item::FirstText(Bytes::copy_from_slice(&heart[..2])))
            .unwrap();
        assert_eq!(
            r.push(Item::Last(Bytes::new())),
            Err(FragmentError::NotText)
        );
    }

    fn fragment() -> impl Strategy<Value = Item> {
        let data = prop::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from);
        prop_oneof![
            data.clone().prop_map(Item::FirstText),
            data.clone().prop_map(Item::FirstBinary),
            data.clone().prop_map(Item::Continue),
            data.prop_map(Item::Last),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, .. ProptestConfig::default() })]

        /// Any sequence of fragments: never a panic, never a message over the limit,
        /// and every whole text message is exactly what its fragments said.
        #[test]
        fn any_fragment_sequence_is_handled(items in prop::collection::vec(fragment(), 0..24)) {
            let mut r = Reassembler::new(100);
            let mut expected: Option<Vec<u8>> = None;
            for item in items {
                let (starts, data, last) = match &item {
                    Item::FirstText(d) => (true, d.clone(), false),
                    Item::FirstBinary(_) => { expected = None; let _ = r.push(item); continue; }
                    Item::Continue(d) => (false, d.clone(), false),
                    Item::Last(d) => (false, d.clone(), true),
                };
                if starts { expected = Some(Vec::new()); }
                if let Some(buf) = expected.as_mut() { buf.extend_from_slice(&data); }
                match r.push(item) {
                    Ok(Assembled::Text(text)) => {
                        prop_assert!(text.len() <= 100);
                        prop_assert_eq!(Some(text.into_bytes()), expected.take());
                    }
                    Err(_) => expected = None,
                    Ok(_) => {}
                }
                if last { expected = None; }
            }
        }
    }
}
