-- +goose Up
-- The language a user reads notices in.
ALTER TABLE users ADD COLUMN language text NOT NULL DEFAULT 'en'
    CHECK (language IN ('en', 'fr', 'de', 'it', 'es'));

-- Invitations into an organization. The link's token is stored hashed; a
-- resend replaces it.
CREATE TABLE invitations (
    id               uuid PRIMARY KEY,
    organization_id  uuid        NOT NULL REFERENCES organizations ON DELETE CASCADE,
    email            text        NOT NULL CHECK (email = lower(email)),
    role             text        NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    purpose          text        NOT NULL DEFAULT '',
    token_hash       bytea       NOT NULL UNIQUE,
    inviter          text        NOT NULL,
    create_time      timestamptz NOT NULL DEFAULT now(),
    expire_time      timestamptz NOT NULL,
    send_time        timestamptz NOT NULL DEFAULT now(),
    accept_time      timestamptz,
    accepted_user_id uuid REFERENCES users ON DELETE SET NULL,
    revoke_time      timestamptz
);
-- One open invitation per email and organization.
CREATE UNIQUE INDEX invitations_open_email ON invitations (organization_id, email)
    WHERE accept_time IS NULL AND revoke_time IS NULL;

-- Notices to people (email, SMS), written in the transaction of the change
-- that causes them and delivered by the notice sender with retries. Params
-- may hold secrets (an invitation link): they are erased once sent.
CREATE TABLE notices (
    id                uuid PRIMARY KEY,
    organization_id   uuid,
    channel           text        NOT NULL CHECK (channel IN ('email', 'sms')),
    recipient         text        NOT NULL,
    language          text        NOT NULL,
    template          text        NOT NULL,
    params            jsonb       NOT NULL DEFAULT '{}',
    state             text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
    attempts          integer     NOT NULL DEFAULT 0,
    next_attempt_time timestamptz NOT NULL DEFAULT now(),
    last_error        text        NOT NULL DEFAULT '',
    create_time       timestamptz NOT NULL DEFAULT now(),
    sent_time         timestamptz
);
CREATE INDEX notices_due ON notices (next_attempt_time) WHERE state = 'pending';
CREATE INDEX notices_dead ON notices (organization_id, create_time DESC) WHERE state = 'dead';

-- +goose Down
DROP TABLE notices;
DROP TABLE invitations;
ALTER TABLE users DROP COLUMN language;
