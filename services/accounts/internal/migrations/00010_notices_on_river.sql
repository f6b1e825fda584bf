-- +goose Up
-- Notices are delivered by River jobs (kind 'notice', in this schema's
-- river_job), which hold the retries: a pending notice gets its job, with
-- the attempts it has left of the default 8, at the time it was due.
-- Dead notices are left to an admin's RetryNotice, which queues a job.
INSERT INTO river_job (kind, args, queue, max_attempts, scheduled_at)
SELECT 'notice', jsonb_build_object('id', id), 'default', greatest(8 - attempts, 1), next_attempt_time
FROM notices WHERE state = 'pending';
-- The job's schedule is the notice's now.
DROP INDEX notices_due;

-- +goose Down
CREATE INDEX notices_due ON notices (next_attempt_time) WHERE state = 'pending';
DELETE FROM river_job WHERE kind = 'notice';
