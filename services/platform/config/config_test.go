package config_test

import (
	"bytes"
	"errors"
	"flag"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mailplane/mailplane/services/platform/config"
)

// settings is a small service configuration: one setting of each type.
type settings struct {
	DatabaseURL string
	Port        int
	TokenTTL    time.Duration
}

var defaults = settings{DatabaseURL: "postgres://localhost/mailplane", Port: 8080, TokenTTL: 15 * time.Minute}

// load registers settings on a loader reading env and parses args.
func load(env map[string]string, args []string) (settings, *config.Loader, string, error) {
	var s settings
	var usage bytes.Buffer
	l := config.NewLoader("mailplane", func(k string) string { return env[k] }, &usage)
	l.String(&s.DatabaseURL, "database-url", defaults.DatabaseURL, "PostgreSQL URL")
	l.Int(&s.Port, "port", defaults.Port, "gRPC port")
	l.Duration(&s.TokenTTL, "token-ttl", defaults.TokenTTL, "access token lifetime")
	err := l.Parse(args)
	return s, l, usage.String(), err
}

func TestLoaderPrecedence(t *testing.T) {
	env := map[string]string{
		"MAILPLANE_DATABASE_URL": "postgres://db.internal/mailplane",
		"MAILPLANE_PORT":         "9090",
		"MAILPLANE_TOKEN_TTL":    "1h",
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want settings
	}{
		{
			name: "defaults",
			want: defaults,
		},
		{
			name: "env beats default",
			env:  env,
			want: settings{DatabaseURL: "postgres://db.internal/mailplane", Port: 9090, TokenTTL: time.Hour},
		},
		{
			name: "flag beats env",
			env:  env,
			args: []string{"--database-url=postgres://flag/db", "--port", "7070", "-token-ttl=90s"},
			want: settings{DatabaseURL: "postgres://flag/db", Port: 7070, TokenTTL: 90 * time.Second},
		},
		{
			name: "flag beats default",
			args: []string{"--port=7070"},
			want: settings{DatabaseURL: defaults.DatabaseURL, Port: 7070, TokenTTL: defaults.TokenTTL},
		},
		{
			name: "each setting on its own",
			env:  map[string]string{"MAILPLANE_PORT": "9090"},
			args: []string{"--token-ttl=2m"},
			want: settings{DatabaseURL: defaults.DatabaseURL, Port: 9090, TokenTTL: 2 * time.Minute},
		},
		{
			name: "an empty variable is unset",
			env:  map[string]string{"MAILPLANE_DATABASE_URL": "", "MAILPLANE_PORT": "", "MAILPLANE_TOKEN_TTL": ""},
			want: defaults,
		},
		{
			name: "variables of other names are ignored",
			env:  map[string]string{"PORT": "1", "DATABASE_URL": "postgres://other", "MAILPLANE_TOKENTTL": "1s"},
			want: defaults,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, _, err := load(tt.env, tt.args)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
		})
	}
}

// messages splits an error made by errors.Join into its messages.
func messages(err error) []string {
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []string{err.Error()}
	}
	var out []string
	for _, e := range j.Unwrap() {
		out = append(out, e.Error())
	}
	return out
}

func TestLoaderMalformedVariables(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{
			name: "malformed int",
			env:  map[string]string{"MAILPLANE_PORT": "eighty"},
			want: []string{`MAILPLANE_PORT="eighty": want a whole number`},
		},
		{
			name: "malformed duration",
			env:  map[string]string{"MAILPLANE_TOKEN_TTL": "15"},
			want: []string{`MAILPLANE_TOKEN_TTL="15": want a duration like 15m or 720h`},
		},
		{
			name: "every malformed variable at once",
			env: map[string]string{
				"MAILPLANE_DATABASE_URL": "postgres://fine",
				"MAILPLANE_PORT":         "80.5",
				"MAILPLANE_TOKEN_TTL":    "one hour",
			},
			want: []string{
				`MAILPLANE_PORT="80.5": want a whole number`,
				`MAILPLANE_TOKEN_TTL="one hour": want a duration like 15m or 720h`,
			},
		},
		{
			name: "malformed variable and malformed flag together",
			env:  map[string]string{"MAILPLANE_TOKEN_TTL": "soon"},
			args: []string{"--port=http"},
			want: []string{
				`MAILPLANE_TOKEN_TTL="soon": want a duration like 15m or 720h`,
				`invalid value "http" for flag -port: parse error`,
			},
		},
		{
			name: "unknown flag",
			args: []string{"--prot=80"},
			want: []string{"flag provided but not defined: -prot"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := load(tt.env, tt.args)
			if diff := cmp.Diff(tt.want, messages(err)); diff != "" {
				t.Errorf("Parse errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoaderArgs(t *testing.T) {
	_, l, _, err := load(nil, []string{"--port=1", "migrate", "--port=2"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"migrate", "--port=2"}, l.Args()); diff != "" {
		t.Errorf("Args (-want +got):\n%s", diff)
	}
}

func TestLoaderHelp(t *testing.T) {
	_, _, usage, err := load(nil, []string{"-h"})
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("Parse(-h) = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{
		"-database-url", "PostgreSQL URL (env MAILPLANE_DATABASE_URL)",
		"-port", "gRPC port (env MAILPLANE_PORT)",
		"-token-ttl", "(env MAILPLANE_TOKEN_TTL)",
	} {
		if !strings.Contains(usage, want) {
			t.Errorf("usage does not mention %q:\n%s", want, usage)
		}
	}
}

func TestEnvName(t *testing.T) {
	tests := map[string]string{
		"port":               "MAILPLANE_PORT",
		"database-url":       "MAILPLANE_DATABASE_URL",
		"access-token-ttl":   "MAILPLANE_ACCESS_TOKEN_TTL",
		"nats-url":           "MAILPLANE_NATS_URL",
		"otlp-endpoint":      "MAILPLANE_OTLP_ENDPOINT",
		"already_underscore": "MAILPLANE_ALREADY_UNDERSCORE",
	}
	for in, want := range tests {
		t.Run(in, func(t *testing.T) {
			if got := config.EnvName(in); got != want {
				t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	s := settings{DatabaseURL: "", Port: 70000, TokenTTL: time.Hour}
	var errs []error
	config.Check(&errs, s.DatabaseURL != "", "database-url", "is required")
	config.Check(&errs, s.Port > 0 && s.Port < 65536, "port", "want 1 to 65535, got %d", s.Port)
	config.Check(&errs, s.TokenTTL <= 24*time.Hour, "token-ttl", "want at most 24h, got %v", s.TokenTTL)

	want := []string{
		"database-url (--database-url, MAILPLANE_DATABASE_URL): is required",
		"port (--port, MAILPLANE_PORT): want 1 to 65535, got 70000",
	}
	if diff := cmp.Diff(want, messages(errors.Join(errs...))); diff != "" {
		t.Errorf("Check errors (-want +got):\n%s", diff)
	}
}

func TestListen(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()

	_, err = config.Listen("socketmap-addr", addr)
	want := "listen on " + addr + " (MAILPLANE_SOCKETMAP_ADDR): address already in use"
	if err == nil || err.Error() != want {
		t.Errorf("Listen on a taken port: %v, want %q", err, want)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("Listen error %v is not EADDRINUSE", err)
	}
	_, err = config.Listen("grpc-addr", "nonsense")
	if err == nil || !strings.HasPrefix(err.Error(), "listen on nonsense (MAILPLANE_GRPC_ADDR): ") {
		t.Errorf("Listen on a bad address: %v", err)
	}
	ln, err := config.Listen("grpc-addr", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
}

func TestLoaderFloat(t *testing.T) {
	for _, tt := range []struct {
		name    string
		env     map[string]string
		args    []string
		want    float64
		wantErr []string
	}{
		{name: "default", want: 1},
		{name: "variable", env: map[string]string{"MAILPLANE_RATIO": "0.25"}, want: 0.25},
		{name: "flag over variable", env: map[string]string{"MAILPLANE_RATIO": "0.25"}, args: []string{"--ratio=0.5"}, want: 0.5},
		{name: "malformed variable", env: map[string]string{"MAILPLANE_RATIO": "10%"}, want: 1, wantErr: []string{`MAILPLANE_RATIO="10%": want a number like 0.25`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got float64
			l := config.NewLoader("mailplane", func(k string) string { return tt.env[k] }, &bytes.Buffer{})
			l.Float(&got, "ratio", 1, "share of something")
			err := l.Parse(tt.args)
			if diff := cmp.Diff(tt.wantErr, messages(err)); diff != "" {
				t.Errorf("Parse errors (-want +got):\n%s", diff)
			}
			if got != tt.want {
				t.Errorf("ratio = %v, want %v", got, tt.want)
			}
		})
	}
}
