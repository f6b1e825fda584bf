package mailboxes

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"
)

// Limits of the socketmap protocol (Postfix socketmap_table(5)): a reply
// holds at most 100,000 characters; a request is a map name and a key,
// which Postfix keeps far below maxSocketmapRequest.
const (
	maxSocketmapReply   = 100000
	maxSocketmapRequest = 10000
)

// How long one answer may take before the mail server is told to try again.
const lookupTimeout = 10 * time.Second

// The maps the socketmap server answers, named in Postfix's configuration
// as socketmap:inet:host:port:<name>.
const (
	mapDomain      = "domain"      // virtual_mailbox_domains
	mapMailbox     = "mailbox"     // virtual_mailbox_maps
	mapAlias       = "alias"       // virtual_alias_maps
	mapSenderLogin = "senderlogin" // smtpd_sender_login_maps
	mapTransport   = "transport"   // transport_maps
	mapVerify      = "verify"      // check_recipient_access
)

// SocketmapServer answers Postfix's table lookups over the socketmap
// protocol: each request is a netstring "name key", each reply a netstring
// "OK value", "NOTFOUND ", "TEMP reason" or "PERM reason". A connection
// carries any number of requests.
type SocketmapServer struct {
	lookups *Lookups
	log     *slog.Logger
	// Limits bound its connections; zero: the defaults.
	Limits ConnLimits
}

// NewSocketmapServer returns a server answering from lookups.
func NewSocketmapServer(lookups *Lookups, log *slog.Logger) *SocketmapServer {
	return &SocketmapServer{lookups: lookups, log: log}
}

// Serve answers connections on ln until ctx is done, then closes ln and
// every connection and returns nil once they are over.
func (s *SocketmapServer) Serve(ctx context.Context, ln net.Listener) error {
	limits := s.Limits.or(DefaultSocketmapIdle)
	return serveConns(ctx, ln, s.log, newConnCounter("socketmap", limits, s.log), func(ctx context.Context, c net.Conn) {
		s.serveConn(ctx, c, limits.Idle)
	})
}

func (s *SocketmapServer) serveConn(ctx context.Context, c net.Conn, idle time.Duration) {
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	for {
		c.SetReadDeadline(time.Now().Add(idle))
		req, err := readNetstring(r, maxSocketmapRequest)
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				s.log.Warn("socketmap: closing connection", "client", c.RemoteAddr().String(), "error", err)
			}
			return
		}
		reply := s.answer(ctx, string(req))
		c.SetWriteDeadline(time.Now().Add(lookupTimeout))
		writeNetstring(w, reply)
		if err := w.Flush(); err != nil {
			return
		}
	}
}

// answer returns the reply to one request.
func (s *SocketmapServer) answer(ctx context.Context, req string) string {
	name, key, ok := strings.Cut(req, " ")
	if !ok {
		return "PERM a request is \"name key\""
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	var (
		values []string
		found  bool
		err    error
	)
	switch name {
	case mapDomain:
		found, err = s.lookups.Domain(ctx, key)
		values = []string{strings.ToLower(key)} // any value will do
	case mapMailbox:
		var path string
		path, found, err = s.lookups.Mailbox(ctx, key)
		values = []string{path}
	case mapAlias:
		values, found, err = s.lookups.Alias(ctx, key)
	case mapSenderLogin:
		values, found, err = s.lookups.SenderLogins(ctx, key)
	case mapTransport:
		var t string
		t, found, err = s.lookups.Transport(ctx, key)
		values = []string{t}
	case mapVerify:
		found, err = s.lookups.Verify(ctx, key)
		values = []string{"reject_unverified_recipient"}
	default:
		return "PERM no map named " + name
	}
	if err != nil {
		s.log.Error("socketmap lookup", "map", name, "key", key, "error", err)
		return "TEMP lookup failed, try again later"
	}
	if !found {
		return "NOTFOUND "
	}
	reply := "OK " + strings.Join(values, ",")
	if len(reply) > maxSocketmapReply {
		s.log.Error("socketmap reply too long", "map", name, "key", key, "bytes", len(reply))
		return "PERM reply too long"
	}
	return reply
}

var errNetstring = errors.New("malformed netstring")

// readNetstring reads one netstring, "<length>:<data>,", of at most max
// bytes of data.
func readNetstring(r *bufio.Reader, max int) ([]byte, error) {
	n, digits := 0, 0
	for {
		c, err := r.ReadByte()
		if err != nil {
			if digits > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if c == ':' && digits > 0 {
			break
		}
		if c < '0' || c > '9' {
			return nil, errNetstring
		}
		n = n*10 + int(c-'0')
		digits++
		if n > max {
			return nil, fmt.Errorf("netstring longer than %d bytes", max)
		}
	}
	buf := make([]byte, n+1)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	if buf[n] != ',' {
		return nil, errNetstring
	}
	return buf[:n], nil
}

// writeNetstring writes s as a netstring.
func writeNetstring(w *bufio.Writer, s string) {
	fmt.Fprintf(w, "%d:%s,", len(s), s)
}

// serveConns accepts connections on ln and serves each with handle on its
// own goroutine; one over the caps of cc is closed at once. When ctx is
// done it closes ln and every connection, waits for the handlers and
// returns nil.
func serveConns(ctx context.Context, ln net.Listener, log *slog.Logger, cc *connCounter, handle func(context.Context, net.Conn)) error {
	var (
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			c.Close()
		}
	})
	defer stop()
	defer wg.Wait()
	backoff := 5 * time.Millisecond
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait and retry,
			// as net/http does.
			log.Error("accept", "addr", ln.Addr().String(), "error", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		host, ok := cc.acquire(c)
		if !ok {
			c.Close()
			continue
		}
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			cc.release(host)
			c.Close()
			continue
		}
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
				cc.release(host)
			}()
			handle(ctx, c)
		}()
	}
}
