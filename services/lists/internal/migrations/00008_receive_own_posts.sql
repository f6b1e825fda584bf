-- +goose Up
-- Whether a member gets a copy of their own posts (Mailman's
-- receive_own_postings): by default not.
ALTER TABLE members ADD COLUMN receive_own_posts boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE members DROP COLUMN receive_own_posts;
