-- +goose Up
-- The client addresses each user signed in from lately (at most 20 kept):
-- from those a correct password still gets in when the per-email sign-in
-- limit of all addresses together is exhausted, so an outsider cannot lock
-- a user out.
CREATE TABLE sign_in_clients (
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_address text NOT NULL,
    last_time      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, client_address)
);

-- Counters whose window is over are pruned as new ones start.
CREATE INDEX sign_in_attempts_window_start ON sign_in_attempts (window_start);

-- Invitation emails are counted per organization and per recipient over
-- the last 24 hours.
CREATE INDEX notices_invitations_organization ON notices (organization_id, create_time) WHERE template = 'invitation';
CREATE INDEX notices_invitations_recipient ON notices (recipient, create_time) WHERE template = 'invitation';

-- +goose Down
DROP INDEX notices_invitations_recipient;
DROP INDEX notices_invitations_organization;
DROP INDEX sign_in_attempts_window_start;
DROP TABLE sign_in_clients;
