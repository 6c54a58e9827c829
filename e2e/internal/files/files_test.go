package files

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLastLinesAndTail(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb", 5, "a\nb"},
		{"", 3, ""},
	} {
		if got := LastLines(tt.in, tt.n); got != tt.want {
			t.Errorf("LastLines(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
	p := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(p, []byte("1\n2\n3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := Tail(p, 1); got != "3" {
		t.Errorf("Tail = %q", got)
	}
	if got := Tail(p+".none", 1); got == "" {
		t.Error("Tail of a missing file says nothing")
	}
}

func TestLockExcludes(t *testing.T) {
	p := filepath.Join(t.TempDir(), ".lock")
	unlock, err := Lock(p)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{})
	go func() {
		u, err := Lock(p)
		if err == nil {
			u()
		}
		close(got)
	}()
	time.Sleep(100 * time.Millisecond) // time for the goroutine to reach Lock
	select {
	case <-got:
		t.Fatal("a second Lock did not wait for the first")
	default:
	}
	unlock()
	<-got
}
