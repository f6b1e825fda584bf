-- +goose Up
-- Subscriptions that wait: for the subscriber's confirmation (state 1) or
-- a moderator's decision (state 2). One per address and list: asking
-- again refreshes it. The address is kept only while the request waits;
-- a decision or its expiry deletes the row.
CREATE TABLE subscription_requests (
    id           uuid PRIMARY KEY,
    list_id      uuid        NOT NULL REFERENCES lists ON DELETE CASCADE,
    email        text        NOT NULL,
    email_key    text        NOT NULL,
    display_name text        NOT NULL DEFAULT '',
    -- How it was asked ("mail", "form", ...): the member's consent record.
    via          text        NOT NULL,
    state        smallint    NOT NULL,
    create_time  timestamptz NOT NULL DEFAULT now(),
    update_time  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT subscription_requests_email UNIQUE (list_id, email_key)
);
CREATE INDEX subscription_requests_list ON subscription_requests (list_id, create_time);

-- The tokens mailed for a confirmation or a moderator's decision, by
-- their SHA-256: whoever reads the table cannot act with them. A use
-- deletes the row (single use); expire_time ends it otherwise. target is
-- the subscription request or held post decided on; email the address a
-- leave is confirmed for.
CREATE TABLE tokens (
    hash        bytea       PRIMARY KEY,
    list_id     uuid        NOT NULL REFERENCES lists ON DELETE CASCADE,
    action      text        NOT NULL,
    email       text        NOT NULL DEFAULT '',
    target      uuid,
    expire_time timestamptz NOT NULL
);
CREATE INDEX tokens_target ON tokens (target);
CREATE INDEX tokens_expire ON tokens (expire_time);

-- Answers mailed to one address per list and hour, so that the robots
-- cannot be made to flood someone: sender is the SHA-256 of the
-- address's email_key (no address is kept for this).
CREATE TABLE reply_counts (
    list_id uuid        NOT NULL REFERENCES lists ON DELETE CASCADE,
    sender  bytea       NOT NULL,
    hour    timestamptz NOT NULL,
    count   integer     NOT NULL,
    PRIMARY KEY (list_id, sender, hour)
);

-- How a member joined, for the consent record kept when they leave.
ALTER TABLE members ADD COLUMN joined_by text NOT NULL DEFAULT 'added by a moderator';

-- +goose Down
ALTER TABLE members DROP COLUMN joined_by;
DROP TABLE reply_counts, tokens, subscription_requests;
