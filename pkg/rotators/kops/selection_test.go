package kops

import (
	"context"
	"io"
	"strings"
	"testing"

	"k8s.io/kops/util/pkg/vfs"
)

// `run service-account` rotates the service-account key only: the other
// keysets stay as they are, the run finishes, and an unknown keyset is one
// line naming it, with nothing changed.
func TestRunOnSelectedKeysets(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		selected []string
		wantErr  string
		rotated  []string
	}{
		{"service-account only", []string{"service-account"}, "", []string{"service-account"}},
		{"all", []string{"all"}, "", []string{"kubernetes-ca", "service-account"}},
		{"unknown keyset", []string{"no-such-ca"}, `keyset "no-such-ca" not found`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, "memfs://select-"+t.Name(), vfs.NewTestingVFSContext(), "kubernetes-ca", "service-account")
			before := ids(t, s)
			s.Selected = tt.selected
			err := runYes(s, ctx, RunOptions{Yes: true, Runner: okRunner, Out: io.Discard})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("%v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			s.Selected = nil
			after := ids(t, s)
			for name, id := range before {
				rotated := false
				for _, r := range tt.rotated {
					rotated = rotated || r == name
				}
				if changed := after[name] != id; changed != rotated {
					t.Errorf("keyset %s: primary changed %v, want %v", name, changed, rotated)
				}
			}
			if tt.wantErr != "" {
				return
			}
			// What the keysets themselves say: the old keypairs distrusted.
			sts, err := s.Statuses(ctx, tt.rotated)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range sts {
				if st.Stage != StageDistrusted {
					t.Errorf("keyset %s is %s after the run, want distrusted", st.Name, st.Stage)
				}
			}
		})
	}
}
