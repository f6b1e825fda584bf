-- +goose Up
-- Events waiting for the relay to publish them to JetStream. A row is written
-- in the same transaction as the change it describes and deleted once the
-- broker has acknowledged it.
CREATE TABLE outbox (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         uuid        NOT NULL UNIQUE,
    subject    text        NOT NULL,
    payload    bytea       NOT NULL,
    headers    jsonb       NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Events a durable consumer applied, written in the same transaction as
-- their effects, so a redelivery is recognised and skipped.
CREATE TABLE applied_events (
    consumer   text        NOT NULL,
    event_id   uuid        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- +goose Down
DROP TABLE applied_events;
DROP TABLE outbox;
