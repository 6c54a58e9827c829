package mountinfo

import "testing"

func TestUnescape(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`/tmp/plain`, `/tmp/plain`},
		{`/tmp/a\040b`, `/tmp/a b`},
		{`/tmp/tab\011x\134y`, "/tmp/tab\tx\\y"},
		{`/tmp/short\04`, `/tmp/short\04`},
	} {
		if got := Unescape(tt.in); got != tt.want {
			t.Errorf("Unescape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestUnderFindsRoot(t *testing.T) {
	got, err := Under("/")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || got[0] == "" {
		t.Fatalf("no mount under /: %v", got)
	}
}
