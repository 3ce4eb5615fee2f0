//! One schema for both backends. Written by hand (not `diesel print-schema`) because
//! SQLite reports `INTEGER` where PostgreSQL has `BIGINT`; declaring every id `BigInt`
//! lets the same query code compile for both.

diesel::table! {
    hospitals (id) {
        id -> BigInt,
        name -> Text,
        plan -> Text,
        timezone -> Text,
        created_at -> Timestamp,
        password_login -> Bool,
        retention_days -> Nullable<Integer>,
        active -> Bool,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        name -> Text,
        role -> Text,
        hospital_id -> Nullable<BigInt>,
        password_hash -> Text,
        created_at -> Timestamp,
        active -> Bool,
    }
}

diesel::table! {
    auth_tokens (id) {
        id -> BigInt,
        user_id -> BigInt,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    consultant_availability (consultant_id) {
        consultant_id -> BigInt,
        status -> Text,
        current_session_id -> Nullable<BigInt>,
        auto_accept -> Bool,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    consultant_specialties (id) {
        id -> BigInt,
        consultant_id -> BigInt,
        department -> Text,
        proficiency -> Text,
    }
}

diesel::table! {
    support_sessions (id) {
        id -> BigInt,
        hospital_id -> BigInt,
        requester_id -> BigInt,
        consultant_id -> Nullable<BigInt>,
        department -> Text,
        urgency -> Text,
        status -> Text,
        issue_summary -> Text,
        resolution_notes -> Nullable<Text>,
        resolved -> Nullable<Bool>,
        requested_consultant_id -> Nullable<BigInt>,
        wait_for_consultant -> Bool,
        created_at -> Timestamp,
        response_deadline -> Timestamp,
        accepted_at -> Nullable<Timestamp>,
        started_at -> Nullable<Timestamp>,
        ended_at -> Nullable<Timestamp>,
        wait_time_seconds -> Nullable<BigInt>,
        duration_seconds -> Nullable<BigInt>,
        rating -> Nullable<Integer>,
        feedback -> Nullable<Text>,
        match_tier -> Nullable<Text>,
        match_score -> Nullable<BigInt>,
        match_reasons -> Nullable<Text>,
        video_provider -> Nullable<Text>,
        room_name -> Nullable<Text>,
        room_url -> Nullable<Text>,
        room_deleted -> Bool,
        cancelled_by -> Nullable<BigInt>,
        wrapped_up_at -> Nullable<Timestamp>,
        text_erased_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    support_queue (session_id) {
        session_id -> BigInt,
        urgency -> Text,
        response_deadline -> Timestamp,
        enqueued_at -> Timestamp,
    }
}

diesel::table! {
    staff_consultant_preferences (id) {
        id -> BigInt,
        staff_id -> BigInt,
        consultant_id -> BigInt,
        preference_rank -> Nullable<Integer>,
        total_sessions -> Integer,
        successful_sessions -> Integer,
        rating_sum -> Integer,
        rating_count -> Integer,
        last_session_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    dedicated_assignments (id) {
        id -> BigInt,
        consultant_id -> BigInt,
        staff_id -> Nullable<BigInt>,
        hospital_id -> Nullable<BigInt>,
        department -> Nullable<Text>,
        exclusive -> Bool,
        weekdays -> Nullable<Text>,
        start_minute -> Nullable<Integer>,
        end_minute -> Nullable<Integer>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    consultant_status_log (id) {
        id -> BigInt,
        consultant_id -> BigInt,
        status -> Text,
        started_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    session_events (id) {
        id -> BigInt,
        session_id -> Nullable<BigInt>,
        kind -> Text,
        actor_id -> Nullable<BigInt>,
        consultant_id -> Nullable<BigInt>,
        detail -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    offers (id) {
        id -> BigInt,
        session_id -> BigInt,
        consultant_id -> BigInt,
        outcome -> Text,
        tier -> Text,
        score -> BigInt,
        reasons -> Text,
        offered_at -> Timestamp,
        expires_at -> Timestamp,
        resolved_at -> Nullable<Timestamp>,
        epoch -> BigInt,
    }
}

diesel::table! {
    event_stream (id) {
        id -> Integer,
        replay_floor -> BigInt,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        user_id -> Nullable<BigInt>,
        action -> Text,
        target_type -> Text,
        target_id -> Nullable<BigInt>,
        created_at -> Timestamp,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    consultant_hours (id) {
        id -> BigInt,
        consultant_id -> BigInt,
        weekday -> Integer,
        start_minute -> Integer,
        end_minute -> Integer,
    }
}

diesel::table! {
    sso_identities (id) {
        id -> BigInt,
        user_id -> BigInt,
        provider -> Text,
        issuer -> Text,
        subject -> Text,
        created_at -> Timestamp,
        last_sign_in_at -> Timestamp,
    }
}

diesel::table! {
    sso_logins (state) {
        state -> Text,
        provider -> Text,
        nonce -> Text,
        pkce_verifier -> Text,
        redirect_uri -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    retention_runs (id) {
        id -> BigInt,
        hospital_id -> BigInt,
        started_at -> Timestamp,
        finished_at -> Timestamp,
        retention_days -> Integer,
        cutoff -> Timestamp,
        sessions_erased -> BigInt,
        started_by -> Text,
    }
}

diesel::joinable!(users -> hospitals (hospital_id));
diesel::joinable!(sso_identities -> users (user_id));
diesel::joinable!(auth_tokens -> users (user_id));
diesel::joinable!(support_sessions -> hospitals (hospital_id));
diesel::joinable!(support_queue -> support_sessions (session_id));
diesel::joinable!(offers -> support_sessions (session_id));
diesel::joinable!(retention_runs -> hospitals (hospital_id));

diesel::allow_tables_to_appear_in_same_query!(
    hospitals,
    users,
    auth_tokens,
    consultant_availability,
    consultant_specialties,
    support_sessions,
    support_queue,
    staff_consultant_preferences,
    dedicated_assignments,
    consultant_status_log,
    session_events,
    offers,
    event_stream,
    audit_log,
    sso_identities,
    sso_logins,
    retention_runs,
    consultant_hours,
);
