// Package duration parses durations as operators write them for key ages
// and overlaps: Go's forms (90m, 12h, 1h30m) plus days (7d, 90d, 1d12h).
package duration

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Parse parses s as a non-negative duration. A leading "<N>d" counts days
// of 24 hours; the rest, if any, uses time.ParseDuration's units.
func Parse(s string) (time.Duration, error) {
	orig := s
	var total time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		days, err := strconv.Atoi(s[:i])
		if err != nil || days < 0 || days > 100000 {
			return 0, fmt.Errorf("duration %q: use forms like 90d, 12h, 30m or 1d12h", orig)
		}
		total = time.Duration(days) * 24 * time.Hour
		s = s[i+1:]
	}
	if s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("duration %q: use forms like 90d, 12h, 30m or 1d12h", orig)
		}
		total += d
	}
	if orig == "" || total < 0 {
		return 0, fmt.Errorf("duration %q: use forms like 90d, 12h, 30m or 1d12h", orig)
	}
	return total, nil
}

// Format prints d using days for whole days: 7d, 1d12h, 36m.
func Format(d time.Duration) string {
	days := d / (24 * time.Hour)
	rest := d - days*24*time.Hour
	switch {
	case days == 0:
		return rest.String()
	case rest == 0:
		return fmt.Sprintf("%dd", days)
	default:
		return fmt.Sprintf("%dd%s", days, strings.TrimSuffix(strings.TrimSuffix(rest.String(), "0s"), "0m"))
	}
}

// Value is a pflag.Value for day-aware durations.
type Value struct{ D *time.Duration }

func (v Value) String() string {
	if v.D == nil {
		return ""
	}
	return Format(*v.D)
}

// Set parses s.
func (v Value) Set(s string) error {
	d, err := Parse(s)
	if err != nil {
		return err
	}
	*v.D = d
	return nil
}

// Type names the flag type in help.
func (Value) Type() string { return "duration" }
