package kops

import (
	"context"
	"strings"
	"testing"

	"k8s.io/kops/util/pkg/vfs"
)

// Each gate of the procedure is passed only by what it is about: --force
// (force) skips the keysets' not-promoted check and nothing else, an export
// done by hand is journaled (MarkExported) instead of forced, and the old
// keypairs are trusted again only as a rollback of this tool's distrust.
func TestGatesAreTiedToWhatTheyGuard(t *testing.T) {
	ctx := context.Background()
	stage := func(t *testing.T, s *Store) {
		if _, err := s.KeysetStep(ctx, StepStage, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	promote := func(t *testing.T, s *Store) {
		stage(t, s)
		if _, err := s.KeysetStep(ctx, StepPromote, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		setup   func(t *testing.T, s *Store)
		step    func(s *Store) error
		wantErr string // "" for success
	}{
		{"force does not skip the export gate", promote,
			func(s *Store) error { _, err := s.KeysetStep(ctx, StepDistrust, nil, true); return err }, "not been exported since the promote"},
		{"force skips the not-promoted check, not the export gate", stage,
			func(s *Store) error { _, err := s.KeysetStep(ctx, StepDistrust, nil, true); return err }, "not been exported since the promote"},
		{"an export by hand, journaled, passes the export gate", promote,
			func(s *Store) error {
				if err := s.MarkExported(ctx); err != nil {
					return err
				}
				_, err := s.KeysetStep(ctx, StepDistrust, nil, false)
				return err
			}, ""},
		{"an export before any promote is refused", stage,
			func(s *Store) error { return s.MarkExported(ctx) }, "nothing is promoted"},
		{"a distrust made by hand is not rolled back", func(t *testing.T, s *Store) {
			promote(t, s)
			if _, err := s.Distrust(ctx, nil, false); err != nil {
				t.Fatal(err)
			}
		}, func(s *Store) error { _, err := s.KeysetStep(ctx, StepRollback, nil, false); return err }, "were not distrusted by kops-rotate"},
		{"a distrust made by hand is rolled back with force", func(t *testing.T, s *Store) {
			promote(t, s)
			if _, err := s.Distrust(ctx, nil, false); err != nil {
				t.Fatal(err)
			}
		}, func(s *Store) error { _, err := s.KeysetStep(ctx, StepRollback, nil, true); return err }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, "memfs://gates-"+t.Name(), vfs.NewTestingVFSContext(), "kubernetes-ca")
			tt.setup(t, s)
			before := stages(t, s)
			err := tt.step(s)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("%v, want %q", err, tt.wantErr)
			case tt.wantErr != "":
				if after := stages(t, s); after["kubernetes-ca"] != before["kubernetes-ca"] {
					t.Errorf("a refused step changed the stage from %s to %s", before["kubernetes-ca"], after["kubernetes-ca"])
				}
			}
		})
	}
}
