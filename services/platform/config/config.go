// Package config reads settings from command-line flags and MAILPLANE_*
// environment variables. Every setting is a flag ("--database-url") whose
// default comes from its variable (MAILPLANE_DATABASE_URL), so the same binary
// is configured by a Kubernetes env block or by hand.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Loader collects settings into a flag set.
type Loader struct {
	fs     *flag.FlagSet
	getenv func(string) string
	errs   []error
}

// NewLoader returns a loader for the command name reading the environment
// through getenv.
func NewLoader(name string, getenv func(string) string, usageOut io.Writer) *Loader {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(usageOut)
	return &Loader{fs: fs, getenv: getenv}
}

// EnvName is the environment variable behind flag name.
func EnvName(name string) string {
	return "MAILPLANE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

func (l *Loader) env(name string) (string, bool) {
	v := l.getenv(EnvName(name))
	return v, v != ""
}

func (l *Loader) usage(name, usage string) string {
	return fmt.Sprintf("%s (env %s)", usage, EnvName(name))
}

// String registers a string setting.
func (l *Loader) String(p *string, name, def, usage string) {
	if v, ok := l.env(name); ok {
		def = v
	}
	l.fs.StringVar(p, name, def, l.usage(name, usage))
}

// Int registers an integer setting.
func (l *Loader) Int(p *int, name string, def int, usage string) {
	if v, ok := l.env(name); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			l.errs = append(l.errs, fmt.Errorf("%s=%q: want a whole number", EnvName(name), v))
		} else {
			def = n
		}
	}
	l.fs.IntVar(p, name, def, l.usage(name, usage))
}

// Duration registers a duration setting ("15m", "720h").
func (l *Loader) Duration(p *time.Duration, name string, def time.Duration, usage string) {
	if v, ok := l.env(name); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			l.errs = append(l.errs, fmt.Errorf("%s=%q: want a duration like 15m or 720h", EnvName(name), v))
		} else {
			def = d
		}
	}
	l.fs.DurationVar(p, name, def, l.usage(name, usage))
}

// Float registers a number setting ("0.25").
func (l *Loader) Float(p *float64, name string, def float64, usage string) {
	if v, ok := l.env(name); ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			l.errs = append(l.errs, fmt.Errorf("%s=%q: want a number like 0.25", EnvName(name), v))
		} else {
			def = f
		}
	}
	l.fs.Float64Var(p, name, def, l.usage(name, usage))
}

// Bool registers a boolean setting ("true", "false", "1", "0").
func (l *Loader) Bool(p *bool, name string, def bool, usage string) {
	if v, ok := l.env(name); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			l.errs = append(l.errs, fmt.Errorf("%s=%q: want true or false", EnvName(name), v))
		} else {
			def = b
		}
	}
	l.fs.BoolVar(p, name, def, l.usage(name, usage))
}

// Parse reads args. It reports every malformed variable or flag at once.
func (l *Loader) Parse(args []string) error {
	if err := l.fs.Parse(args); err != nil {
		l.errs = append(l.errs, err)
	}
	return errors.Join(l.errs...)
}

// Args returns the arguments left after the flags.
func (l *Loader) Args() []string { return l.fs.Args() }

// Check collects a validation failure when ok is false, naming the setting.
func Check(errs *[]error, ok bool, name, format string, args ...any) {
	if !ok {
		*errs = append(*errs, fmt.Errorf("%s (--%s, %s): %s", name, name, EnvName(name), fmt.Sprintf(format, args...)))
	}
}
