-- +goose Up
-- services/platform/mirror skips an event older than one it applied to the
-- same address or mail service (a redelivery after a failure): it keeps
-- here the stream sequence of the last event applied to each, deletions
-- included. Copies made before have none: their next event applies.
CREATE TABLE mirror_versions (
    id  uuid PRIMARY KEY,
    seq bigint NOT NULL
);

-- +goose Down
DROP TABLE mirror_versions;
