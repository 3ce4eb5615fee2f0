-- Every status change closes the consultant's open interval
-- (`WHERE consultant_id = ? AND ended_at IS NULL`). Through the (consultant_id,
-- started_at) index that walked the consultant's whole history, a little slower with
-- every call they ever took; this index holds only the open intervals (one per
-- consultant), so the update finds its row at once however long the history grows.
CREATE INDEX consultant_status_log_open_idx ON consultant_status_log (consultant_id) WHERE ended_at IS NULL;
