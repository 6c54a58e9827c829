package duration

import (
	"testing"
	"time"
)

func TestParseAndFormat(t *testing.T) {
	tests := []struct {
		in     string
		want   time.Duration
		format string
	}{
		{"7d", 7 * 24 * time.Hour, "7d"},
		{"90d", 90 * 24 * time.Hour, "90d"},
		{"12h", 12 * time.Hour, "12h0m0s"},
		{"1d12h", 36 * time.Hour, "1d12h"},
		{"30m", 30 * time.Minute, "30m0s"},
		{"0s", 0, "0s"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if f := Format(got); f != tt.format {
			t.Errorf("Format(%v) = %q, want %q", got, f, tt.format)
		}
	}
	for _, bad := range []string{"", "d", "7", "-1d", "7days", "1d-5h", "x1d", "1w", "1d1d"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"7d", "1d12h", "90m", "", "d", "1d1d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Parse(s)
		if err == nil && d < 0 {
			t.Errorf("Parse(%q) = %v: negative", s, d)
		}
	})
}
