package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mailplane/mailplane/gateway"
)

func TestParseSettings(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    settings
		wantErr string
	}{
		{
			name: "defaults",
			want: settings{
				Config:   gateway.Config{Addr: ":8080", AccountsAddr: "127.0.0.1:9090", ShutdownTimeout: 20 * time.Second},
				logLevel: "info",
			},
		},
		{
			name: "environment",
			env: map[string]string{
				"MAILPLANE_HTTP_ADDR":        ":9000",
				"MAILPLANE_ACCOUNTS_ADDR":    "accounts:9090",
				"MAILPLANE_CORS_ORIGINS":     "https://a.example, https://b.example,",
				"MAILPLANE_SHUTDOWN_TIMEOUT": "5s",
				"MAILPLANE_LOG_LEVEL":        "debug",
				"MAILPLANE_OTLP_ENDPOINT":    "collector:4317",
			},
			want: settings{
				Config: gateway.Config{
					Addr:            ":9000",
					AccountsAddr:    "accounts:9090",
					CORSOrigins:     []string{"https://a.example", "https://b.example"},
					ShutdownTimeout: 5 * time.Second,
				},
				logLevel:     "debug",
				otlpEndpoint: "collector:4317",
			},
		},
		{
			name: "flags win",
			args: []string{"--http-addr=:7000", "--cors-origins=*", "--shutdown-timeout=1m"},
			env:  map[string]string{"MAILPLANE_HTTP_ADDR": ":9000", "MAILPLANE_SHUTDOWN_TIMEOUT": "5s"},
			want: settings{
				Config:   gateway.Config{Addr: ":7000", AccountsAddr: "127.0.0.1:9090", CORSOrigins: []string{"*"}, ShutdownTimeout: time.Minute},
				logLevel: "info",
			},
		},
		{
			name:    "bad duration",
			env:     map[string]string{"MAILPLANE_SHUTDOWN_TIMEOUT": "soon"},
			wantErr: "MAILPLANE_SHUTDOWN_TIMEOUT",
		},
		{
			name:    "stray argument",
			args:    []string{"serve"},
			wantErr: "unexpected arguments",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			got, err := parseSettings(tt.args, getenv, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(settings{})); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewLogger(t *testing.T) {
	if _, err := newLogger(io.Discard, "loud"); err == nil {
		t.Error(`newLogger("loud") = nil error, want one`)
	}
}
