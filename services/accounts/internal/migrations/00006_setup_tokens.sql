-- +goose Up
-- Setup tokens let a user an administrator created choose their password.
-- Such a user has an empty password_hash until then and cannot sign in.
CREATE TABLE setup_tokens (
    token_hash  bytea PRIMARY KEY,
    user_id     uuid        NOT NULL REFERENCES users ON DELETE CASCADE,
    expire_time timestamptz NOT NULL
);

-- +goose Down
DROP TABLE setup_tokens;
