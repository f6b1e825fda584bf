package lists

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/pg"
)

// One-click unsubscribe (RFC 8058). Each copy of a post carries
// List-Unsubscribe: <https://edge/forms/one-click?token=T>, <mailto:…-leave@…>
// and List-Unsubscribe-Post: List-Unsubscribe=One-Click; a POST of that
// body to the URL unsubscribes the member, a GET shows a page with a
// button (mail scanners follow GETs).
//
// The token is the list's id, then the member's address sealed with the
// list's own AES-256-GCM key (list_forms.one_click_key, random):
//   - no address in the URL, and nothing to guess: forging a token needs
//     the key;
//   - nothing stored per member or per copy: the distribution computes a
//     token per copy without a query, at any list size (a random token
//     per member would be a write per member, or a lookup per copy);
//   - a key per list, not one from the process's settings: a token of one
//     list opens nothing on another, and deleting a list retires its key.
//     The key sits in the database in the clear: whoever reads it there
//     can delete the members outright anyway.
// The token stays valid while the key does: a member who left and joins
// again can use an old copy's link, which is theirs.

const (
	// oneClickPath is the edge's one-click route; the token travels in
	// the query.
	oneClickPath = "/forms/one-click"
	// maxTokenBytes bounds a token: an address of 254 bytes sealed.
	maxTokenBytes = 512
)

// formsState is the forms' and one-click unsubscribe's part of Server.
type formsState struct {
	// edgeURL is the edge's public base URL (edge-url); empty: no forms.
	edgeURL string
	limit   FormLimit
	// keys caches the lists' one-click AEADs (cachedSealer).
	mu   sync.Mutex
	keys map[uuid.UUID]cipher.AEAD
}

// SetForms sets the edge's public base URL (forms post to it, one-click
// links point to it; https for one-click) and the public calls' limit;
// a zero limit keeps the defaults.
func (s *Server) SetForms(edgeURL string, limit FormLimit) {
	s.forms.edgeURL = strings.TrimSuffix(edgeURL, "/")
	if limit.Window <= 0 || limit.Calls <= 0 {
		limit = FormLimit{Window: DefaultFormWindow, Calls: DefaultFormsPerClient}
	}
	s.forms.limit = limit
}

// sealer returns the AEAD of a list's one-click key, making the key the
// first time.
func (s *Server) sealer(ctx context.Context, list uuid.UUID) (cipher.AEAD, error) {
	_, key, err := ensureFormsRow(ctx, s.pool, list)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("one-click key of %s: %w", list, err)
	}
	return cipher.NewGCM(block)
}

// oneClickURL returns the one-click URL of l's member whose email_key is
// key, for a copy of a post: empty (List-Unsubscribe keeps its mailto:
// only) when edge-url is not https, as RFC 8058 requires, or when the
// list's key cannot be read: the post still goes out.
func (s *Server) oneClickURL(ctx context.Context, l *list, key string) string {
	if !strings.HasPrefix(s.forms.edgeURL, "https://") {
		return ""
	}
	aead, err := s.cachedSealer(ctx, l.id)
	if err != nil {
		s.log.ErrorContext(ctx, "one-click key: a copy without a one-click URL", "list", l.id, "error", err)
		return ""
	}
	return s.forms.edgeURL + oneClickPath + "?token=" + sealToken(aead, l.id, key)
}

// maxCachedKeys bounds the keys kept in memory; the cache starts over
// when full.
const maxCachedKeys = 1000

// cachedSealer is sealer, remembered: a distribution seals one token per
// copy, and a list's key never changes.
func (s *Server) cachedSealer(ctx context.Context, list uuid.UUID) (cipher.AEAD, error) {
	s.forms.mu.Lock()
	aead, ok := s.forms.keys[list]
	s.forms.mu.Unlock()
	if ok {
		return aead, nil
	}
	aead, err := s.sealer(ctx, list)
	if err != nil {
		return nil, err
	}
	s.forms.mu.Lock()
	if s.forms.keys == nil || len(s.forms.keys) >= maxCachedKeys {
		s.forms.keys = map[uuid.UUID]cipher.AEAD{}
	}
	s.forms.keys[list] = aead
	s.forms.mu.Unlock()
	return aead, nil
}

// sealToken seals key under list.
func sealToken(aead cipher.AEAD, list uuid.UUID, key string) string {
	b := make([]byte, 16+aead.NonceSize(), 16+aead.NonceSize()+len(key)+aead.Overhead())
	copy(b, list[:])
	rand.Read(b[16:])
	b = aead.Seal(b, b[16:], []byte(key), list[:])
	return base64.RawURLEncoding.EncodeToString(b)
}

// tokenList reads the list id in front of a token.
func tokenList(token string) (uuid.UUID, []byte, bool) {
	if len(token) > maxTokenBytes {
		return uuid.Nil, nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < 16+12+16+3 {
		return uuid.Nil, nil, false
	}
	id, _ := uuid.FromBytes(b[:16])
	return id, b, true
}

// openToken returns the member's email_key a token seals.
func openToken(aead cipher.AEAD, b []byte) (string, bool) {
	list, n := b[:16], aead.NonceSize()
	if len(b) < 16+n {
		return "", false
	}
	key, err := aead.Open(nil, b[16:16+n], b[16+n:], list)
	if err != nil {
		return "", false
	}
	return string(key), true
}

// tokenMember finds the list and member address a token names. A token
// that does not open is InvalidArgument, in the list's language when the
// list is known.
func (s *Server) tokenMember(ctx context.Context, token string) (*list, string, error) {
	bad := errs.Field("token", "not a valid one-click token")
	id, b, ok := tokenList(token)
	if !ok {
		return nil, "", bad
	}
	rows, _ := s.pool.Query(ctx, listColumns+` WHERE id = $1`, id)
	l, err := pgx.CollectOneRow(rows, scanList)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", bad
	}
	if err != nil {
		return nil, "", fmt.Errorf("token's list: %w", err)
	}
	aead, err := s.sealer(ctx, l.id)
	if err != nil {
		return nil, "", err
	}
	key, ok := openToken(aead, b)
	if !ok {
		return nil, "", refusal(l, bad, texts(l.language).badToken)
	}
	return l, key, nil
}

// GetUnsubscribePage returns the page of a one-click link opened in a
// browser: a question and a button, nothing done.
func (s *Server) GetUnsubscribePage(ctx context.Context, req *listsv1.GetUnsubscribePageRequest) (*listsv1.GetUnsubscribePageResponse, error) {
	l, _, err := s.tokenMember(ctx, req.GetToken())
	if err != nil {
		return nil, err
	}
	t := texts(l.language)
	return &listsv1.GetUnsubscribePageResponse{
		Page:   &listsv1.FormPage{Language: t.code, Title: t.unsubscribeTitle, Message: fmt.Sprintf(t.unsubscribeAsk, l.localPart+"@"+l.domain)},
		Button: t.unsubscribeButton,
	}, nil
}

// OneClickUnsubscribe erases the member a token names. It is not rate
// limited per client: mailbox providers post one-click requests for all
// their users from a few addresses, and a token cannot be guessed.
func (s *Server) OneClickUnsubscribe(ctx context.Context, req *listsv1.OneClickUnsubscribeRequest) (*listsv1.OneClickUnsubscribeResponse, error) {
	l, key, err := s.tokenMember(ctx, req.GetToken())
	if err != nil {
		return nil, err
	}
	// The same answer whether the member was still there or not.
	if _, err := s.eraseMember(ctx, l, key, "one-click unsubscribe"); err != nil {
		return nil, err
	}
	t := texts(l.language)
	return &listsv1.OneClickUnsubscribeResponse{
		Page: &listsv1.FormPage{Language: t.code, Title: t.unsubscribeTitle, Message: fmt.Sprintf(t.unsubscribed, l.localPart+"@"+l.domain)},
	}, nil
}

// eraseMember unsubscribes l's member whose email_key is key as a
// confirmed leave does (robots' leave): the address is erased, the
// consent record says how it was withdrawn, the member gets the list's
// goodbye. It reports whether there was such a member.
func (s *Server) eraseMember(ctx context.Context, l *list, key, how string) (bool, error) {
	var found bool
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		found, err = s.leave(ctx, tx, l, key, how, robotActor, false)
		return err
	})
	return found, err
}

// formJoin and formLeave are what a web form asks: the subscription core
// (requests.go), by the list's policy, recorded as asked by form.
func (s *Server) formJoin(ctx context.Context, l *list, email, name string) error {
	return s.requestJoin(ctx, l, email, name, "form")
}

func (s *Server) formLeave(ctx context.Context, l *list, email string) error {
	return s.requestLeave(ctx, l, email, "form")
}
