-- +goose Up
-- The platform's ad filter changed: auto-replies are notifications, and
-- a discussion list's posts stay in the inbox. Scripts are installed only
-- when an address changes, so every address is queued for the reinstall
-- sweep (10,000 every 5 minutes). A pending one gets a new version: an
-- install of the old scripts running now does not clear it. One refused
-- before is tried again: the scripts are new.
INSERT INTO pending_installs (address_id) SELECT id FROM addresses
ON CONFLICT (address_id) DO UPDATE
SET version = pending_installs.version + 1, failed_time = NULL, failure = '';

-- +goose Down
-- Nothing to undo: reinstalling is harmless.
SELECT 1;
