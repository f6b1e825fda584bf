-- +goose Up
-- source_checks counts the logins an organization's import requests made
-- to source servers, per hour: a request whose login is refused costs the
-- caller nothing else, so without a cap the service would test passwords
-- against any IMAP server for whoever loops on it.
CREATE TABLE source_checks (
    organization_id uuid NOT NULL,
    hour timestamptz NOT NULL,
    count integer NOT NULL,
    PRIMARY KEY (organization_id, hour)
);

-- +goose Down
DROP TABLE source_checks;
