//! Query pieces that keep SQLite's prepared statements reusable.
//!
//! SQLite re-plans a cached statement on every execution (a full parse, as costly as
//! not caching it) when the value bound to one of its parameters could change the
//! plan. Two of ours did that on every call:
//!
//! - `LIMIT ?`: diesel's `.first()` binds its limit, and SQLite (3.53) plans with the
//!   bound limit. Point lookups by a unique key therefore use `.get_result()`, which
//!   needs no limit.
//! - A term comparing a column with a parameter where a partial index's `WHERE`
//!   compares it with a constant (`offers.outcome = ?` against the pending-offer
//!   indexes' `outcome = 'pending'`): SQLite checks the bound value to decide whether
//!   the index applies. [`Word`] writes such a vocabulary word into the SQL instead.
//!
//! Both were found with `SQLITE_STMTSTATUS_REPREPARE` on the bundled SQLite (see
//! BENCHMARKS.md, "Where the time goes").

use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::expression::{
    is_aggregate, AppearsOnTable, Expression, SelectableExpression, ValidGrouping,
};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{SqlType, Text};
use diesel::QueryResult;

/// A stored vocabulary word as an SQL string constant (`'pending'`), for the terms
/// that partial indexes are matched against.
#[derive(Debug, Clone, Copy)]
pub struct Word<ST = Text> {
    word: &'static str,
    sql_type: PhantomData<ST>,
}

/// The word, which must be a vocabulary word (lowercase letters and underscores):
/// it is written into the SQL text, never a value from outside.
pub fn word(word: &'static str) -> Word {
    debug_assert!(
        word.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "not a vocabulary word: {word}"
    );
    Word {
        word,
        sql_type: PhantomData,
    }
}

impl<ST: SqlType + diesel::sql_types::SingleValue> Expression for Word<ST> {
    type SqlType = ST;
}

impl<ST, DB: Backend> QueryFragment<DB> for Word<ST> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("'");
        out.push_sql(self.word);
        out.push_sql("'");
        Ok(())
    }
}

/// Not a static id: statements holding a word are cached by their SQL text, which
/// differs per word.
impl<ST> QueryId for Word<ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST, QS> AppearsOnTable<QS> for Word<ST> where Word<ST>: Expression {}

impl<ST, QS> SelectableExpression<QS> for Word<ST> where Word<ST>: Expression {}

impl<ST, GB> ValidGrouping<GB> for Word<ST> {
    type IsAggregate = is_aggregate::Never;
}
