-- One event appended per transaction, the way an event store on PostgreSQL
-- appends: the next version of the client's own stream, guarded by the
-- unique (stream, version) index. Each pgbench client owns one stream, so
-- there are no conflicts, as in Ticketlog's 64-writer append run.
-- :payload is set with -D; :client_id is pgbench's own (0 .. clients-1).
INSERT INTO events (stream, version, payload)
SELECT :client_id, coalesce(max(version), 0) + 1, :payload
FROM events
WHERE stream = :client_id;
