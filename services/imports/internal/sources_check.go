package imports

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode/utf8"

	importsv1 "github.com/mailplane/mailplane/proto/mailplane/imports/v1"
	"github.com/mailplane/mailplane/services/imports/internal/imapcopy"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/validate"
)

const (
	// maxSources is how many sources one job copies.
	maxSources = 2
	// maxPassword bounds a source password, in bytes (the proto's rule
	// counts characters).
	maxPassword = 1024
	// maxLogin bounds a login, in characters, as the proto's rule does:
	// a bulk row's source is built from its CSV, which that rule does not
	// reach.
	maxLogin = 254
)

// source is a job's source as stored (without its password).
type source struct {
	// HostedEmail: an address hosted here, read from the platform's IMAP
	// server (Host, Port and Security are then the settings', not stored).
	HostedEmail string `json:"hostedEmail,omitempty"`
	Host        string `json:"host,omitempty"`
	Port        int    `json:"port,omitempty"`
	// Security is "tls" or "starttls".
	Security string `json:"security,omitempty"`
	Login    string `json:"login"`
	// Pin is the SHA-256 of the one certificate accepted, in lower-case
	// hex; empty: verified against the system's roots.
	Pin string `json:"certificateSha256,omitempty"`
}

// server is where the source's server is, for the limit per server.
func (s source) server() string {
	if s.HostedEmail != "" {
		return "hosted"
	}
	return strings.ToLower(s.Host)
}

func (s source) proto() *importsv1.Source {
	p := &importsv1.Source{HostedEmail: s.HostedEmail, Host: s.Host, Port: int32(s.Port), Login: s.Login, CertificateSha256: s.Pin}
	switch s.Security {
	case "tls":
		p.Security = importsv1.Security_SECURITY_TLS
	case "starttls":
		p.Security = importsv1.Security_SECURITY_STARTTLS
	}
	return p
}

// checkSource checks the fields of the source at field ("importJob.sources[0]")
// that need no I/O, and returns it as stored, with its password.
func checkSource(field string, in *importsv1.Source) (source, string, error) {
	var v []errs.FieldViolation
	bad := func(f, d string) { v = append(v, errs.FieldViolation{Field: field + "." + f, Description: d}) }
	var s source
	pw := in.GetPassword()
	switch {
	case pw == "":
		bad("password", "is required")
	case len(pw) > maxPassword:
		bad("password", fmt.Sprintf("at most %d bytes", maxPassword))
	case strings.ContainsAny(pw, "\x00\r\n"):
		bad("password", "must not hold NUL or line breaks")
	}
	if utf8.RuneCountInString(in.GetLogin()) > maxLogin {
		bad("login", fmt.Sprintf("at most %d characters", maxLogin))
	}
	switch {
	case in.GetHostedEmail() != "" && in.GetHost() != "":
		bad("host", "set hostedEmail or host, not both")
	case in.GetHostedEmail() != "":
		email := strings.ToLower(strings.TrimSpace(in.GetHostedEmail()))
		if err := validate.Email(email); err != nil {
			bad("hostedEmail", "must be an email address")
		}
		if in.GetPort() != 0 || in.GetSecurity() != importsv1.Security_SECURITY_UNSPECIFIED || in.GetCertificateSha256() != "" {
			bad("hostedEmail", "a hosted address takes no port, security or certificate: the platform's server is used")
		}
		s.HostedEmail = email
		s.Login = strings.TrimSpace(in.GetLogin())
	case in.GetHost() != "":
		host, err := checkHost(in.GetHost())
		if err != nil {
			bad("host", err.Error())
		}
		s.Host = host
		switch in.GetSecurity() {
		case importsv1.Security_SECURITY_UNSPECIFIED, importsv1.Security_SECURITY_TLS:
			s.Security, s.Port = "tls", 993
		case importsv1.Security_SECURITY_STARTTLS:
			s.Security, s.Port = "starttls", 143
		default:
			bad("security", "must be SECURITY_TLS or SECURITY_STARTTLS")
		}
		if p := in.GetPort(); p != 0 {
			if p < 1 || p > 65535 {
				bad("port", "must be 1 to 65535")
			}
			s.Port = int(p)
		}
		s.Login = strings.TrimSpace(in.GetLogin())
		if s.Login == "" {
			bad("login", "is required")
		}
		if in.GetCertificateSha256() != "" {
			pin, err := parsePin(in.GetCertificateSha256())
			if err != nil {
				bad("certificateSha256", err.Error())
			}
			s.Pin = pin
		}
	default:
		bad("host", "set host (another provider's server) or hostedEmail (an address hosted here)")
	}
	if len(v) > 0 {
		return source{}, "", errs.Fields(v...)
	}
	return s, pw, nil
}

// checkHost returns host in lower case if it is an IP address or a
// domain name, or why not.
func checkHost(host string) (string, error) {
	host = strings.TrimSuffix(strings.TrimSpace(host), ".")
	if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil {
		return ip.String(), nil
	}
	if strings.ContainsAny(host, ":/@ ") {
		return "", fmt.Errorf("must be a host name or an IP address, without port or scheme (got %q)", host)
	}
	ascii, _, err := validate.Domain(host)
	if err != nil {
		return "", fmt.Errorf("must be a host name or an IP address: %v", err)
	}
	return ascii, nil
}

// parsePin returns a SHA-256 fingerprint as lower-case hex, colons and
// spaces dropped.
func parsePin(s string) (string, error) {
	h := strings.ToLower(strings.NewReplacer(":", "", " ", "").Replace(s))
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("must be a SHA-256 fingerprint: 64 hex digits, colons allowed")
	}
	return h, nil
}

// pinned returns the TLS settings accepting only the certificate whose
// SHA-256 is pin: the customer's explicit exception for a server whose
// certificate the system's roots do not trust.
func pinned(host, pin string) *tls.Config {
	return &tls.Config{
		ServerName: host,
		MinVersion: tls.VersionTLS12,
		// The chain is not verified: the pin replaces it.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("no certificate shown")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if got := hex.EncodeToString(sum[:]); got != pin {
				return fmt.Errorf("the certificate's SHA-256 fingerprint %s is not the pinned one", got)
			}
			return nil
		},
	}
}

// Hosted is the platform's own IMAP server: the in-cluster Dovecot that
// hosted sources are read from and every destination is written to.
type Hosted struct {
	Host     string
	Port     int
	Security imapcopy.Security
	// TLS, when set, replaces the system's roots (a private CA).
	TLS *tls.Config
	// MasterUser and MasterPassword log in as any address: the
	// destination is reached as "<login>*<MasterUser>", and no customer
	// password is stored for it.
	MasterUser, MasterPassword string
}

func (h Hosted) server() imapcopy.Server {
	return imapcopy.Server{Host: h.Host, Port: h.Port, Security: h.Security, TLS: h.TLS}
}

// account is the IMAP login of s with password pw; login is a hosted
// address's Dovecot login.
func (s source) account(h Hosted, login, pw string) imapcopy.Account {
	if s.HostedEmail != "" {
		return imapcopy.Account{Server: h.server(), Login: login, Password: pw}
	}
	srv := imapcopy.Server{Host: s.Host, Port: s.Port, Security: imapcopy.TLS}
	if s.Security == "starttls" {
		srv.Security = imapcopy.StartTLS
	}
	if s.Pin != "" {
		srv.TLS = pinned(s.Host, s.Pin)
	}
	return imapcopy.Account{Server: srv, Login: s.Login, Password: pw}
}

// account is src's IMAP login with password pw (login: a hosted
// address's Dovecot login). Another provider's server must be public at
// every connection, the check and each run of the job, unless private
// sources are allowed.
func (s *Server) account(src source, login, pw string) imapcopy.Account {
	a := src.account(s.hosted, login, pw)
	a.PublicOnly = src.HostedEmail == "" && !s.limits.PrivateSources
	return a
}

// destination is the master-user login reaching the address whose
// Dovecot login is login.
func (h Hosted) destination(login string) imapcopy.Account {
	return imapcopy.Account{Server: h.server(), Login: h.MasterUser, Password: h.MasterPassword, As: login}
}

// hostPort is the source's server as people write it.
func (s source) hostPort() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }
