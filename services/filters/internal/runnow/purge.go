package runnow

import (
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-imap"
	"github.com/emersion/go-imap/client"
	"github.com/emersion/go-imap/responses"
)

// Purge removes from folder every message saved in it before the day of
// before (UID SEARCH SAVEDBEFORE, RFC 8514, which Dovecot has; BEFORE, the
// internal date, on a server without SAVEDATE), with \Deleted and UID
// EXPUNGE of those UIDs only, and says how many. The saved date is what
// Dovecot's autoexpunge counts from: mail moved into Spam today is kept
// its 30 days whatever date it arrived on. A folder that does not exist
// has nothing to purge.
func Purge(c *client.Client, folder string, before time.Time) (int, error) {
	if _, err := c.Select(folder, false); err != nil {
		if strings.Contains(strings.ToLower(err.Error()), "doesn't exist") {
			return 0, nil
		}
		return 0, fmt.Errorf("select %s: %w", folder, err)
	}
	key := "BEFORE"
	if ok, err := c.Support("SAVEDATE"); err == nil && ok {
		key = "SAVEDBEFORE"
	}
	res := new(responses.Search)
	status, err := c.Execute(&rawSearch{key: key, date: before}, res)
	if err == nil {
		err = status.Err()
	}
	if err != nil {
		return 0, fmt.Errorf("search %s %s: %w", folder, key, err)
	}
	if len(res.Ids) == 0 {
		return 0, nil
	}
	// In sets of at most 5000 UIDs: a command line of bounded length.
	for ids := res.Ids; len(ids) > 0; {
		n := min(len(ids), 5000)
		set := new(imap.SeqSet)
		set.AddNum(ids[:n]...)
		if err := (&runner{c: c}).do(op{kind: expunge}, set); err != nil {
			return 0, fmt.Errorf("expunge in %s: %w", folder, err)
		}
		ids = ids[n:]
	}
	return len(res.Ids), nil
}

// rawSearch is UID SEARCH <key> <date>: go-imap v1's criteria know
// neither SAVEDBEFORE nor a date without a time zone.
type rawSearch struct {
	key  string
	date time.Time
}

func (s *rawSearch) Command() *imap.Command {
	return &imap.Command{Name: "UID", Arguments: []any{imap.RawString("SEARCH"), imap.RawString(s.key), imap.RawString(s.date.Format("2-Jan-2006"))}}
}
