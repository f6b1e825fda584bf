-- +goose Up
-- Moderators named as users carry their login email in lists.moderators
-- ({"user": "users/…", "user_email": "…"}); accounts' events about a
-- user (member removed, user deleted, login released) find the lists
-- they moderate with @>, which this index answers.
CREATE INDEX lists_moderators ON lists USING gin (moderators jsonb_path_ops);

-- +goose Down
DROP INDEX lists_moderators;
