-- +goose Up
-- Bounces (issue 12, point 6). A list's settings, with Mailman 3's
-- defaults: delivery is disabled at a bounce score of 5; a score whose
-- last bounce is older than 7 days starts again; 3 warnings, 7 days
-- apart, then the member is removed.
ALTER TABLE lists
    ADD COLUMN bounce_score_threshold       integer NOT NULL DEFAULT 5,
    ADD COLUMN bounce_info_stale_days       integer NOT NULL DEFAULT 7,
    ADD COLUMN bounce_warnings              integer NOT NULL DEFAULT 3,
    ADD COLUMN bounce_warning_interval_days integer NOT NULL DEFAULT 7;

-- A member's bounce state. bounce_score counts the days (UTC) with a
-- permanent failure, at most one a day; delivery is listsv1.Delivery
-- (1 enabled, 2 disabled by bounces). bounce_warnings_sent and
-- last_warning_time drive the periodic sweep once delivery is disabled.
ALTER TABLE members
    ADD COLUMN bounce_score           integer     NOT NULL DEFAULT 0,
    ADD COLUMN first_bounce_time      timestamptz,
    ADD COLUMN last_bounce_time       timestamptz,
    ADD COLUMN last_bounce_diagnostic text        NOT NULL DEFAULT '',
    ADD COLUMN delivery               smallint    NOT NULL DEFAULT 1,
    ADD COLUMN delivery_disabled_time timestamptz,
    ADD COLUMN bounce_warnings_sent   integer     NOT NULL DEFAULT 0,
    ADD COLUMN last_warning_time      timestamptz;
-- The sweep reads only the members bounces disabled.
CREATE INDEX members_bounce_disabled ON members (delivery_disabled_time) WHERE delivery = 2;

-- Each permanent failure reported for a member, with its date and the
-- remote server's words; the newest 20 per member are kept. counted says
-- whether it raised the score (the first of its day).
CREATE TABLE member_bounces (
    id          uuid PRIMARY KEY,
    member_id   uuid        NOT NULL REFERENCES members ON DELETE CASCADE,
    status      text        NOT NULL DEFAULT '',
    diagnostic  text        NOT NULL DEFAULT '',
    counted     boolean     NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX member_bounces_member ON member_bounces (member_id, create_time);

-- +goose Down
DROP TABLE member_bounces;
DROP INDEX members_bounce_disabled;
ALTER TABLE members
    DROP COLUMN bounce_score, DROP COLUMN first_bounce_time, DROP COLUMN last_bounce_time,
    DROP COLUMN last_bounce_diagnostic, DROP COLUMN delivery, DROP COLUMN delivery_disabled_time,
    DROP COLUMN bounce_warnings_sent, DROP COLUMN last_warning_time;
ALTER TABLE lists
    DROP COLUMN bounce_score_threshold, DROP COLUMN bounce_info_stale_days,
    DROP COLUMN bounce_warnings, DROP COLUMN bounce_warning_interval_days;
