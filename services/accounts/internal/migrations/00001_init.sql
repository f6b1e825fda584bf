-- +goose Up
CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text        NOT NULL,
    display_name  text        NOT NULL,
    password_hash text        NOT NULL,
    create_time   timestamptz NOT NULL DEFAULT now(),
    update_time   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_email_lower CHECK (email = lower(email))
);

CREATE TABLE organizations (
    id           uuid PRIMARY KEY,
    display_name text        NOT NULL,
    create_time  timestamptz NOT NULL DEFAULT now(),
    update_time  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE memberships (
    organization_id uuid        NOT NULL REFERENCES organizations ON DELETE CASCADE,
    user_id         uuid        NOT NULL REFERENCES users ON DELETE CASCADE,
    role            text        NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    create_time     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX memberships_user_id ON memberships (user_id);

-- Refresh tokens are stored as SHA-256 hashes. Each refresh rotates the token
-- within its family; presenting a rotated token again revokes the family.
CREATE TABLE refresh_tokens (
    token_hash  bytea PRIMARY KEY,
    family_id   uuid        NOT NULL,
    user_id     uuid        NOT NULL REFERENCES users ON DELETE CASCADE,
    create_time timestamptz NOT NULL DEFAULT now(),
    expire_time timestamptz NOT NULL,
    revoke_time timestamptz
);
CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id);

-- Fixed-window counters of sign-in attempts, keyed "email:<addr>" or
-- "client:<ip>". Kept in the database so every replica sees the same count.
CREATE TABLE sign_in_attempts (
    key          text PRIMARY KEY,
    window_start timestamptz NOT NULL,
    attempts     integer     NOT NULL
);

-- +goose Down
DROP TABLE sign_in_attempts;
DROP TABLE refresh_tokens;
DROP TABLE memberships;
DROP TABLE organizations;
DROP TABLE users;
