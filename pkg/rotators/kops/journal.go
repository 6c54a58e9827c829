package kops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"k8s.io/kops/pkg/apis/kops"
	"k8s.io/kops/util/pkg/vfs"
	"k8s.io/kops/util/pkg/vfs/acls"
	"sigs.k8s.io/yaml"

	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// recordFile is the rotation record as it is kept in the state store at
// <configBase>/backups/kops-rotate/state.yaml (see journalPath). started and done are the fields the
// record always had (a record written by an earlier kops-rotate, with only
// those two, reads as a journal whose marks carry no key ids); the others
// are the engine's: which procedure wrote it, the last failure, the person's
// step a run waits at, and the facts (the key ids the rotation's steps were made for).
type recordFile struct {
	Started   *time.Time                 `json:"started,omitempty"`
	Done      map[string]time.Time       `json:"done,omitempty"`
	Procedure string                     `json:"procedure,omitempty"`
	Updated   *time.Time                 `json:"updated,omitempty"`
	Failed    string                     `json:"failed,omitempty"`
	Error     string                     `json:"error,omitempty"`
	Waiting   string                     `json:"waiting,omitempty"`
	Facts     map[string]json.RawMessage `json:"facts,omitempty"`
}

func decodeRecord(b []byte) (*procedure.Record, error) {
	f := &recordFile{}
	if err := yaml.UnmarshalStrict(b, f); err != nil {
		return nil, err
	}
	r := &procedure.Record{Procedure: f.Procedure, Steps: f.Done, Failed: f.Failed, Error: f.Error, Waiting: f.Waiting, Facts: f.Facts}
	if f.Started != nil {
		r.Started = *f.Started
	}
	if f.Updated != nil {
		r.Updated = *f.Updated
	}
	return r, nil
}

func encodeRecord(r *procedure.Record) ([]byte, error) {
	f := &recordFile{Done: r.Steps, Procedure: r.Procedure, Failed: r.Failed, Error: r.Error, Waiting: r.Waiting, Facts: r.Facts}
	if !r.Started.IsZero() {
		t := r.Started.UTC()
		f.Started = &t
	}
	if !r.Updated.IsZero() {
		t := r.Updated.UTC()
		f.Updated = &t
	}
	return yaml.Marshal(f)
}

// Journal is the procedure.Journal of a cluster's keyset rotation: the
// record file backups/kops-rotate/state.yaml under the cluster's config base
// in the kOps state store (see Store.journalPath for why there). It is the
// only writer of that file: `kops-rotate run` (through the engine) and the
// single keyset commands (through Store.KeysetStep) both write it here.
//
// Compatibility: earlier versions kept the record at
// <configBase>/rotation/state.yaml (Legacy), a path `kops delete cluster`
// refuses. Load reads it when the new file does not exist yet; the next
// Save writes the new file and removes the old one, so the cluster becomes
// deletable again; Delete removes both.
//
// The precondition: kOps' vfs has no compare-and-swap (no generation or
// If-Match for S3, GCS, Swift, Azure, file or memfs alike), so the state
// store's equivalent is used. Load remembers the bytes it read (or that
// there was no file); Save and Delete read the file again first and refuse
// with procedure.ErrConflict when it is not what this run last read or
// wrote; a missing file is created with vfs CreateFile, which refuses an
// existing one. The residual race is honest and small but real: another
// writer that writes between the re-read and the write (a window of one
// round trip to the store) is not detected, and its write is lost. kOps
// itself writes keysets the same way (read-modify-write, no lock); a
// second kops-rotate on the same cluster at the same moment is what the
// check catches in practice.
type Journal struct {
	Path vfs.Path
	// Legacy is where earlier versions kept the record; nil: none.
	Legacy vfs.Path
	// Cluster, when set, gives the ACL the file is written with, as kOps
	// computes it for its own state-store writes (acls.GetACL).
	Cluster *kops.Cluster

	loaded     bool
	fromLegacy bool   // seen was read from Legacy (Path did not exist)
	seen       []byte // nil: there was no file
}

// String implements procedure.Journal.
func (j *Journal) String() string { return j.Path.Path() }

// read returns the file's bytes, nil when it does not exist.
func read(ctx context.Context, p vfs.Path) ([]byte, error) {
	b, err := p.ReadFile(ctx)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	if b == nil {
		b = []byte{}
	}
	return bytes.Clone(b), nil
}

// Load implements procedure.Journal: the record, or nil when there is none.
func (j *Journal) Load(ctx context.Context) (*procedure.Record, error) {
	b, err := read(ctx, j.Path)
	if err != nil {
		return nil, err
	}
	from, legacy := j.Path, false
	if b == nil && j.Legacy != nil {
		if b, err = read(ctx, j.Legacy); err != nil {
			return nil, err
		}
		from, legacy = j.Legacy, b != nil
	}
	j.loaded, j.seen, j.fromLegacy = true, b, legacy
	if b == nil || len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	r, err := decodeRecord(b)
	if err != nil {
		return nil, fmt.Errorf("%s is not a kops-rotate record (%v): delete it to start the record over (the keysets keep the rotation's stage)", from, err)
	}
	return r, nil
}

// check is the precondition: the file is as this journal last saw it.
func (j *Journal) check(ctx context.Context) error {
	if !j.loaded {
		return fmt.Errorf("internal: journal %s written before it was loaded", j.Path)
	}
	cur, err := read(ctx, j.Path)
	if err != nil {
		return err
	}
	want := j.seen
	if j.fromLegacy {
		if cur != nil {
			return fmt.Errorf("%w (%s appeared since this run read it)", procedure.ErrConflict, j.Path)
		}
		if cur, err = read(ctx, j.Legacy); err != nil {
			return err
		}
	}
	if (cur == nil) != (want == nil) || !bytes.Equal(cur, want) {
		return fmt.Errorf("%w (%s was written by someone else since this run read it)", procedure.ErrConflict, j)
	}
	return nil
}

// acl is the ACL kOps writes this path with (acls.GetACL in
// k8s.io/kops/util/pkg/vfs/acls/plugins.go, as vfs_castore.go and
// vfs_secretstore.go use it): the strategies registered in this binary are
// consulted. kOps' only one, the GCS strategy (util/pkg/vfs/acls/gce,
// registered by cmd/kops/util/factory.go), is not linked into kops-rotate
// (it pulls in every cloud's packages and new go.mod requirements), so on
// GCS with fine-grained ACLs the journal gets the bucket's default ACL.
func (j *Journal) acl(ctx context.Context) (vfs.ACL, error) {
	if j.Cluster == nil {
		return nil, nil
	}
	acl, err := acls.GetACL(ctx, j.Path, j.Cluster)
	if err != nil {
		return nil, fmt.Errorf("ACL for %s: %w", j.Path, err)
	}
	return acl, nil
}

// removeLegacy removes the record at the old location, if any.
func (j *Journal) removeLegacy(ctx context.Context) error {
	if j.Legacy == nil {
		return nil
	}
	if err := j.Legacy.Remove(ctx); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the old-location record %s (kops delete cluster refuses it; remove it by hand): %w", j.Legacy, err)
	}
	return nil
}

// Save implements procedure.Journal, with the precondition.
func (j *Journal) Save(ctx context.Context, r *procedure.Record) error {
	if err := j.check(ctx); err != nil {
		return err
	}
	b, err := encodeRecord(r)
	if err != nil {
		return err
	}
	acl, err := j.acl(ctx)
	if err != nil {
		return err
	}
	if j.seen == nil || j.fromLegacy {
		err = j.Path.CreateFile(ctx, bytes.NewReader(b), acl)
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w (%s appeared since this run read it)", procedure.ErrConflict, j.Path)
		}
	} else {
		err = j.Path.WriteFile(ctx, bytes.NewReader(b), acl)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", j.Path, err)
	}
	j.seen, j.fromLegacy = b, false
	return j.removeLegacy(ctx)
}

// Delete implements procedure.Journal, with the precondition.
func (j *Journal) Delete(ctx context.Context) error {
	if err := j.check(ctx); err != nil {
		return err
	}
	if j.seen == nil {
		return j.removeLegacy(ctx)
	}
	if !j.fromLegacy {
		if err := j.Path.Remove(ctx); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("deleting %s: %w", j.Path, err)
		}
	}
	if err := j.removeLegacy(ctx); err != nil {
		return err
	}
	j.seen, j.fromLegacy = nil, false
	return nil
}

// Journal returns the journal of this cluster's rotation.
func (s *Store) Journal() (*Journal, error) {
	p, legacy, err := s.journalPath()
	if err != nil {
		return nil, err
	}
	return &Journal{Path: p, Legacy: legacy, Cluster: s.cluster}, nil
}
