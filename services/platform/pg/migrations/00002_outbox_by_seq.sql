-- +goose Up
-- The relay deletes what it sent by seq; event ids are UUIDv7, unique by
-- construction, and JetStream's duplicate window is what acts on them. The
-- index on id only cost two index writes per event.
ALTER TABLE outbox DROP CONSTRAINT outbox_id_key;

-- +goose Down
ALTER TABLE outbox ADD CONSTRAINT outbox_id_key UNIQUE (id);
