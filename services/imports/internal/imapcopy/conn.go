package imapcopy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-imap/client"
	"github.com/emersion/go-sasl"
)

const (
	// dialTimeout bounds the dial, the TLS handshake and the greeting.
	dialTimeout = 20 * time.Second
	// commandTimeout bounds one command, a FETCH or APPEND of a batch
	// included: a server that stops answering must not hold a job forever.
	commandTimeout = 5 * time.Minute
)

// Check logs in and out. Errors wrap ErrUnreachable (dial / greeting
// failed, timeout), ErrTLS (certificate or handshake refused; the x509
// reason in the message), ErrLogin (credentials refused).
func Check(ctx context.Context, a Account) error {
	c, err := login(ctx, a)
	if err != nil {
		return err
	}
	// The answer is known: a server slow to say goodbye must not hold
	// the request that asked.
	c.Timeout = 5 * time.Second
	c.Logout()
	return nil
}

// dial connects to s as its Security says and reads the greeting. The
// connection is closed when ctx ends before the greeting.
func dial(ctx context.Context, s Server) (*client.Client, error) {
	addr := net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	d := net.Dialer{}
	if s.PublicOnly {
		d.Control = publicOnly
	}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if errors.Is(err, ErrPrivate) {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: dial %s: %v", ErrUnreachable, addr, err)
	}
	// The library reads the greeting in New without a context: a deadline
	// (and a close when ctx ends) bound it.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	cfg := tlsConfig(s)
	if s.Security == TLS {
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, tlsError(addr, err)
		}
		conn = tc
	}
	c, err := client.New(conn)
	if err != nil {
		conn.Close()
		if s.Security == TLS && isTLSAlert(err) {
			return nil, tlsError(addr, err)
		}
		return nil, fmt.Errorf("%w: greeting from %s: %v", ErrUnreachable, addr, err)
	}
	c.ErrorLog = log.New(io.Discard, "", 0)
	if s.Security == StartTLS {
		ok, err := c.SupportStartTLS()
		if err != nil {
			c.Terminate()
			return nil, fmt.Errorf("%w: capability of %s: %v", ErrUnreachable, addr, err)
		}
		if !ok {
			c.Terminate()
			return nil, fmt.Errorf("%w: %s does not offer STARTTLS", ErrTLS, addr)
		}
		if err := c.StartTLS(cfg); err != nil {
			c.Terminate()
			return nil, tlsError(addr, err)
		}
	}
	conn.SetDeadline(time.Time{})
	c.Timeout = commandTimeout
	return c, nil
}

// publicOnly is a net.Dialer's Control refusing an address that is not
// Public, before the connection is attempted.
func publicOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrPrivate, address)
	}
	if ip := net.ParseIP(host); ip == nil || !Public(ip) {
		return fmt.Errorf("%w: %s is on a private or local network", ErrPrivate, host)
	}
	return nil
}

// login dials a and logs in.
func login(ctx context.Context, a Account) (*client.Client, error) {
	c, err := dial(ctx, a.Server)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.Terminate() })
	defer stop()
	if a.As != "" {
		err = c.Authenticate(sasl.NewPlainClient(a.As, a.Login, a.Password))
	} else {
		err = c.Login(a.Login, a.Password)
	}
	if err != nil {
		c.Terminate()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: login to %s: %v", ErrUnreachable, a.Host, ctx.Err())
		}
		var ne net.Error
		if errors.As(err, &ne) || strings.Contains(err.Error(), "connection closed") {
			return nil, fmt.Errorf("%w: login to %s: %v", ErrUnreachable, a.Host, err)
		}
		return nil, fmt.Errorf("%w: %s as %q: %v", ErrLogin, a.Host, a.Login, err)
	}
	return c, nil
}

func tlsConfig(s Server) *tls.Config {
	if s.TLS != nil {
		cfg := s.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = s.Host
		}
		return cfg
	}
	return &tls.Config{ServerName: s.Host, MinVersion: tls.VersionTLS12}
}

// tlsError wraps a handshake error in ErrTLS, or ErrUnreachable when the
// connection failed under it (a timeout, a reset).
func tlsError(addr string, err error) error {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
		alert    tls.AlertError
		record   tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid),
		errors.As(err, &verify), errors.As(err, &alert), errors.As(err, &record):
		return fmt.Errorf("%w: %s: %v", ErrTLS, addr, err)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: tls handshake with %s: %v", ErrUnreachable, addr, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrTLS, addr, err)
}

func isTLSAlert(err error) bool {
	var alert tls.AlertError
	return errors.As(err, &alert)
}
