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
//!
//! A third kind was never cached at all: diesel prepares every `UPDATE` and every
//! statement with an `IN (…)` list afresh on each execution. [`Reusable`] caches them.

use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::expression::{
    is_aggregate, AppearsOnTable, Expression, SelectableExpression, ValidGrouping,
};
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
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

/// A statement that diesel would prepare afresh on every execution, cached by its
/// SQL text instead.
///
/// diesel's statement cache keys a query by its Rust type where it can, so it refuses
/// every query whose type does not fix its SQL: an `UPDATE` (a changeset may skip
/// `None` fields) and an `IN (…)` list (one parameter per value). Keyed by the SQL
/// text and bind types, which a non-static query id forces, any statement is safe to
/// reuse: the same text is the same statement. Ours have fixed shapes (fixed columns,
/// lists of vocabulary words), so the cache holds one entry per shape. On the hot
/// path a fresh prepare was about a third of an accept's or an end's transaction.
#[derive(Debug, Clone, Copy)]
pub struct Reusable<Q>(Q);

/// Marks `query` as safe to keep prepared (see [`Reusable`]).
pub fn reusable<Q>(query: Q) -> Reusable<Q> {
    Reusable(query)
}

impl<Q: QueryFragment<DB>, DB: Backend> QueryFragment<DB> for Reusable<Q> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(out)
    }

    /// Safe because the cache key is the SQL text (see the `QueryId` below). The
    /// method is public to implementors of `QueryFragment`, documented under diesel's
    /// third-party-backend feature; the pinned diesel version keeps it stable here.
    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

/// Not a static id, so the statement cache keys this query by its SQL text.
impl<Q> QueryId for Reusable<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// An `UPDATE … RETURNING` stays a query whose rows can be loaded.
impl<Q: Query> Query for Reusable<Q> {
    type SqlType = Q::SqlType;
}

#[cfg(test)]
mod tests {
    use diesel::pg::Pg;
    use diesel::prelude::*;
    use diesel::query_builder::QueryFragment;
    use diesel::sqlite::Sqlite;

    use super::reusable;
    use crate::db::schema::consultant_availability;

    /// Diesel leaves an `UPDATE` out of its statement cache (if a release starts to
    /// cache it, this fails and the wrapper can go); wrapped, it is cached, and its
    /// SQL is what diesel would have sent.
    #[test]
    fn an_update_is_kept_prepared_only_when_wrapped() {
        let update = || {
            diesel::update(consultant_availability::table.find(crate::model::UserId(3)))
                .set(consultant_availability::updated_at.eq(consultant_availability::updated_at))
        };
        for (bare, wrapped) in [
            (
                update().is_safe_to_cache_prepared(&Sqlite),
                reusable(update()).is_safe_to_cache_prepared(&Sqlite),
            ),
            (
                update().is_safe_to_cache_prepared(&Pg),
                reusable(update()).is_safe_to_cache_prepared(&Pg),
            ),
        ] {
            assert!(!bare.unwrap_or(true), "diesel caches updates now");
            assert!(wrapped.unwrap_or(false));
        }
        assert_eq!(
            diesel::debug_query::<Sqlite, _>(&reusable(update())).to_string(),
            diesel::debug_query::<Sqlite, _>(&update()).to_string()
        );
    }
}
