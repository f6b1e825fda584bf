-- +goose Up
-- Posts accepted for distribution. The raw message is kept here, not in
-- the distribution job's args: a post may be up to 50 MB, and River reads
-- and rewrites a job's row at every fetch, retry and rescue; the job names
-- the post and the post keeps its checkpoint. sent_key is the email_key of
-- the last member whose copy the relay accepted (or refused for good):
-- members are sent to in email_key order, so a job resumed after a crash
-- starts after it. done_time is set when every member was handled.
CREATE TABLE posts (
    id          uuid PRIMARY KEY,
    list_id     uuid        NOT NULL REFERENCES lists ON DELETE CASCADE,
    sender      text        NOT NULL,
    subject     text        NOT NULL DEFAULT '',
    message_id  text        NOT NULL DEFAULT '',
    raw         bytea       NOT NULL,
    sent_key    text        NOT NULL DEFAULT '',
    sent_count  integer     NOT NULL DEFAULT 0,
    failed_count integer    NOT NULL DEFAULT 0,
    create_time timestamptz NOT NULL DEFAULT now(),
    done_time   timestamptz
);
CREATE INDEX posts_list ON posts (list_id, create_time);

-- Posts the posting policy did not let through, waiting for a moderator
-- (the moderation API and mail are a later step). reason says why, in
-- words a moderator reads.
CREATE TABLE held_posts (
    id          uuid PRIMARY KEY,
    list_id     uuid        NOT NULL REFERENCES lists ON DELETE CASCADE,
    sender      text        NOT NULL,
    subject     text        NOT NULL DEFAULT '',
    raw         bytea       NOT NULL,
    reason      text        NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX held_posts_list ON held_posts (list_id, create_time);

-- +goose Down
DROP TABLE held_posts, posts;
