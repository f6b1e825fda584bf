-- +goose Up
-- Creates that carried an idempotency key (AIP-155 request_id, or the
-- edge's Idempotency-Key header): the same key from the same caller within
-- 24 hours answers the stored response again. Written in the create's own
-- transaction; rows older than 24 hours are pruned as new ones come.
CREATE TABLE idempotency_keys (
    caller       text        NOT NULL,
    method       text        NOT NULL,
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    resource     text        NOT NULL,
    response     bytea       NOT NULL,
    create_time  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (caller, method, key)
);
CREATE INDEX idempotency_keys_create_time ON idempotency_keys (create_time);

-- +goose Down
DROP TABLE idempotency_keys;
