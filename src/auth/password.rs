//! Password policy: a length floor and ceiling, and a strength estimate by `zxcvbn`
//! (Dropbox's estimator: dictionaries, keyboard walks, repeats, dates, l33t) with the
//! account's own email and name as extra dictionary words, so a nurse cannot make
//! her email her password. The message says why a password is refused, in zxcvbn's
//! own words where it has some.
//!
//! The demo seed does not come through here: its one published password exists for a
//! demo and is hashed by [`crate::db::seed`] directly (see README.md, "Demo accounts").

use zxcvbn::zxcvbn;

/// Shorter passwords are refused before any estimate.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longer ones are refused too: argon2 of a megabyte is a cheap way to burn our CPU.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// zxcvbn's scores run 0 (guessable in under 10³ tries) to 4 (over 10¹⁰); 3 is
/// "safely unguessable" for an online attacker and slows an offline one.
pub const DEFAULT_MIN_SCORE: u8 = 3;
/// The highest score zxcvbn gives.
pub const MAX_SCORE: u8 = 4;

/// Why a password was refused, as a sentence for the person who chose it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WeakPassword(pub String);

/// Checks `password` for an account with this email and name.
pub fn check(password: &str, email: &str, name: &str, min_score: u8) -> Result<(), WeakPassword> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(WeakPassword(format!(
            "must be at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(WeakPassword(format!(
            "must be at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    if password.trim().is_empty() {
        return Err(WeakPassword("must not be only spaces".into()));
    }
    let email = email.trim().to_lowercase();
    // The whole email, its two halves and the domain's labels, and each word of the
    // name: zxcvbn matches user inputs as whole dictionary words.
    let (local_part, domain) = email.split_once('@').unwrap_or((&email, ""));
    let mut inputs: Vec<&str> = vec![&email, local_part, domain];
    inputs.extend(domain.split('.'));
    inputs.extend(local_part.split(['.', '_', '-', '+']));
    inputs.extend(name.split_whitespace());
    inputs.retain(|word| !word.is_empty());
    let lowered: Vec<String> = inputs.iter().map(|w| w.to_lowercase()).collect();
    let inputs: Vec<&str> = lowered.iter().map(String::as_str).collect();
    if password.trim().to_lowercase() == email {
        return Err(WeakPassword("must not be the account's email".into()));
    }
    let estimate = zxcvbn(password, &inputs);
    let score = u8::from(estimate.score());
    if score >= min_score.min(MAX_SCORE) {
        return Ok(());
    }
    let mut reason = format!(
        "is too easy to guess (strength {score} of {MAX_SCORE}, at least {} needed)",
        min_score.min(MAX_SCORE)
    );
    if let Some(feedback) = estimate.feedback() {
        if let Some(warning) = feedback.warning() {
            reason.push_str(&format!(": {warning}"));
        }
        if let Some(suggestion) = feedback.suggestions().first() {
            reason.push_str(&format!(". {suggestion}"));
        }
    }
    Err(WeakPassword(reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(password: &str) -> String {
        check(
            password,
            "nurse.er@riverside.demo",
            "Nora Nurse",
            DEFAULT_MIN_SCORE,
        )
        .expect_err(password)
        .0
    }

    #[test]
    fn the_issues_examples_are_refused_with_a_reason() {
        assert!(refused("        ").contains("spaces"));
        assert!(
            refused("password").contains("too easy"),
            "{}",
            refused("password")
        );
        assert!(refused("12345678").contains("too easy"));
        assert!(refused("nurse.er@riverside.demo").contains("email"));
        assert!(refused("Nurse.Er@Riverside.demo").contains("email"));
        assert!(refused("short").contains("at least 8"));
        assert!(refused(&"x".repeat(MAX_PASSWORD_BYTES + 1)).contains("at most"));
    }

    #[test]
    fn the_accounts_own_words_count_as_guessable() {
        // Strong-looking on its own, weak for this account.
        let email_based = "riverside.demo2026";
        assert!(check(email_based, "someone@else.org", "Some One", 2).is_ok());
        assert!(check(email_based, "nurse@riverside.demo", "Nora Nurse", 3).is_err());
    }

    #[test]
    fn good_passwords_pass_and_the_floor_is_configurable() {
        assert!(check("correct-horse-battery", "a@b.org", "A", DEFAULT_MIN_SCORE).is_ok());
        assert!(check("Tr0mbone-Quartz-Lantern", "a@b.org", "A", MAX_SCORE).is_ok());
        assert!(
            check("password1", "a@b.org", "A", 0).is_ok(),
            "score 0 allows anything long enough"
        );
    }
}
