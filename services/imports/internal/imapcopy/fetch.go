package imapcopy

import (
	"strings"

	"github.com/emersion/go-imap"
	"github.com/emersion/go-imap/client"
	"github.com/emersion/go-imap/commands"
	"github.com/emersion/go-imap/responses"
)

// uidFetch runs UID FETCH on the selected folder and hands each message
// to f with its flags as the server wrote them: go-imap lower-cases
// keywords ("$Forwarded" would become "$forwarded"), and a copy keeps
// them as they are.
func uidFetch(c *client.Client, set *imap.SeqSet, items []imap.FetchItem, f func(m *imap.Message, flags []string)) error {
	if c.State() != imap.SelectedState {
		return client.ErrNoMailboxSelected
	}
	h := responses.HandlerFunc(func(resp imap.Resp) error {
		name, fields, ok := imap.ParseNamedResp(resp)
		if !ok || name != "FETCH" || len(fields) < 2 {
			return responses.ErrUnhandled
		}
		seq, err := imap.ParseNumber(fields[0])
		if err != nil {
			return err
		}
		kv, _ := fields[1].([]interface{})
		m := &imap.Message{SeqNum: seq}
		if err := m.Parse(kv); err != nil {
			return err
		}
		if m.Uid == 0 {
			return responses.ErrUnhandled // a flag change, not an answer
		}
		var flags []string
		for i := 0; i+1 < len(kv); i += 2 {
			if k, _ := imap.ParseString(kv[i]); strings.EqualFold(k, "FLAGS") {
				list, _ := kv[i+1].([]interface{})
				for _, fl := range list {
					s, _ := imap.ParseString(fl)
					if strings.HasPrefix(s, `\`) {
						s = imap.CanonicalFlag(s) // system flags: \Seen, not \SEEN
					}
					flags = append(flags, s)
				}
			}
		}
		f(m, flags)
		return nil
	})
	st, err := c.Execute(&commands.Uid{Cmd: &commands.Fetch{SeqSet: set, Items: items}}, h)
	if err != nil {
		return err
	}
	return st.Err()
}
