-- +goose Up
-- The idempotency keys of creates (AIP-155), in the shape of the platform's
-- idempotency package: each names what its create made, for 24 hours.
CREATE TABLE idempotency_keys (
    caller text NOT NULL,
    method text NOT NULL,
    key uuid NOT NULL,
    request_hash bytea NOT NULL,
    resource text NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (caller, method, key)
);
CREATE INDEX idempotency_keys_by_time ON idempotency_keys (create_time);

-- +goose Down
DROP TABLE idempotency_keys;
