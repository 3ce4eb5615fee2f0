-- Daily webhooks name only the room; this finds its session without a table scan.
CREATE INDEX support_sessions_room_name_idx ON support_sessions (room_name);
