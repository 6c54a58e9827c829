package kops

import (
	"context"
	"strings"
	"testing"

	"k8s.io/kops/util/pkg/vfs"
)

func primaryOf(t *testing.T, s *Store, name string) string {
	t.Helper()
	sts, err := s.Statuses(context.Background(), []string{name})
	if err != nil {
		t.Fatal(err)
	}
	return sts[0].Primary.ID
}

// Rolling back a promote puts back exactly the previous primary, even when
// the keyset had two staged keypairs; where nothing says which one was the
// primary (a promote made by hand), rollback refuses instead of guessing.
func TestRollbackOfAPromotePutsBackThePreviousPrimary(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// promote makes the promote; journaled through KeysetStep, or by
		// hand on the keysets (no journal).
		promote func(t *testing.T, s *Store)
		// wantErr, if set, is what rollback must say (nothing changed).
		wantErr string
	}{
		{name: "promoted by kops-rotate", promote: func(t *testing.T, s *Store) {
			if _, err := s.KeysetStep(ctx, StepPromote, nil, false); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "promoted by hand", promote: func(t *testing.T, s *Store) {
			if _, err := s.Promote(ctx, nil); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "which keypair was the primary before is not known"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, "memfs://promote-"+t.Name(), vfs.NewTestingVFSContext(), "kubernetes-ca")
			before := primaryOf(t, s, "kubernetes-ca")
			if _, err := s.KeysetStep(ctx, StepStage, nil, false); err != nil {
				t.Fatal(err)
			}
			// A second `kops create keypair` after a partial failure.
			second, _ := addKeypair(t, s, "kubernetes-ca", nil, true)
			tt.promote(t, s)
			if got := primaryOf(t, s, "kubernetes-ca"); got != second {
				t.Fatalf("promote made %s primary, want the newest staged %s", got, second)
			}
			_, err := s.KeysetStep(ctx, StepRollback, nil, false)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), before) {
					t.Fatalf("rollback: %v, want %q naming %s", err, tt.wantErr, before)
				}
				if got := primaryOf(t, s, "kubernetes-ca"); got != second {
					t.Errorf("a refused rollback changed the primary to %s", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := primaryOf(t, s, "kubernetes-ca"); got != before {
				t.Errorf("rollback made %s primary, want the previous primary %s", got, before)
			}
		})
	}
}
