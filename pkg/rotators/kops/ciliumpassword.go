package kops

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/kops/pkg/apis/kops"
	"k8s.io/kops/pkg/apis/kops/registry"
	"k8s.io/kops/upup/pkg/fi"

	"github.com/kube-rotate/kube-rotate/pkg/display"
	"github.com/kube-rotate/kube-rotate/pkg/model/ciliumipsec"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// CiliumPasswordSecret is the state-store secret that holds the cluster's
// Cilium IPsec key.
//
// kOps' rules (v1.36.2):
//   - `kops create secret ciliumpassword -f FILE [--force]`
//     (cmd/kops/create_secret_ciliumpassword.go) checks only that FILE is
//     YAML and stores it as is, through the secret store, under this name
//     (ReplaceSecret with --force).
//   - upup/pkg/fi/cloudup/template_functions.go reads it back as the
//     template function CiliumSecret for any cluster with
//     spec.networking.cilium, and the Cilium addon
//     (upup/models/cloudup/resources/addons/networking.cilium.io/k8s-1.16-v1.15.yaml.template)
//     pastes it under stringData of the kube-system Secret
//     cilium-ipsec-keys, mounted at /etc/ipsec in every cilium-agent,
//     whose config is ipsec-key-file /etc/ipsec/keys,
//     enable-ipsec-key-watcher "true" and ipsec-key-rotation-duration "5m".
//   - upup/pkg/fi/cloudup/apply_cluster.go refuses `kops update cluster`
//     when IPsec encryption is enabled and the secret is missing.
//   - So a new key reaches the cluster with `kops update cluster --yes`
//     (the addon's manifest changes; channels applies it on the control
//     plane). The addon is declared with NeedsRollingUpdate "all"
//     (upup/pkg/fi/cloudup/bootstrapchannelbuilder/cilium.go): applying a
//     changed version annotates every node kops.k8s.io/needs-update
//     (channels/pkg/channels/addon.go), which `kops rolling-update cluster
//     --yes` then replaces (pkg/cloudinstances/cloud_instance_group.go), as
//     docs/operations/rotate-secrets.md ("Rotating the Cilium IPSec keys")
//     prescribes. Cilium itself needs no restart: its key-file watcher
//     loads the new key when the kubelet updates the mounted Secret, and
//     it removes the old key ipsec-key-rotation-duration later
//     (cilium/cilium Documentation/security/network/encryption-ipsec.rst).
const CiliumPasswordSecret = "ciliumpassword"

// The steps of a Cilium IPsec key rotation, as the record names them.
const (
	CiliumStepWrite  = "write-ciliumpassword"
	CiliumStepUpdate = "update-cluster"
	CiliumStepRoll   = "rolling-update-cluster"
)

// CiliumSteps are the steps in order.
var CiliumSteps = []string{CiliumStepWrite, CiliumStepUpdate, CiliumStepRoll}

// ciliumProcedure names the record, and factCiliumRotation holds what a
// re-run needs to recognise its own write.
const (
	ciliumProcedure    = "cilium-ipsec-key"
	factCiliumRotation = "cilium-ipsec-rotation"
)

// ciliumRotationFact is the record's fact: the SPIs and the SHA-256 of
// the secret's data before and after the write (digests only, never the
// key: the state store holds the key itself next to it).
type ciliumRotationFact struct {
	From      uint8  `json:"from"`
	To        uint8  `json:"to"`
	OldSHA256 string `json:"oldSHA256"`
	NewSHA256 string `json:"newSHA256"`
}

// CiliumIPsecChange is what a rotation of the Cilium IPsec key did: the
// key ids and the new key's description, never key bytes.
type CiliumIPsecChange struct {
	// OldSPI and NewSPI are the key ids before and after.
	OldSPI uint8 `json:"oldSPI"`
	NewSPI uint8 `json:"newSPI"`
	// Key describes the new key (ciliumipsec.Key.String: algorithm, key
	// length, ICV length, "+").
	Key string `json:"key"`
	// At is when the secret was written.
	At time.Time `json:"at"`
}

// String implements fmt.Stringer.
func (c CiliumIPsecChange) String() string {
	return fmt.Sprintf("%s: key id %d -> %d (%s)", CiliumPasswordSecret, c.OldSPI, c.NewSPI, c.Key)
}

// CiliumIPsecKey reads the cluster's ciliumpassword secret through kOps'
// secret store and parses it as Cilium would read it: its data and key.
// A missing secret, or one Cilium or kOps cannot use, is an error naming
// the fix.
func (s *Store) CiliumIPsecKey(ctx context.Context) ([]byte, *ciliumipsec.Key, error) {
	ss, err := s.clientset.SecretStore(s.cluster)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the secret store of cluster %s: %w", s.Cluster, err)
	}
	sec, err := ss.FindSecret(CiliumPasswordSecret)
	if err != nil {
		return nil, nil, fmt.Errorf("reading secret %s of cluster %s: %w", CiliumPasswordSecret, s.Cluster, err)
	}
	if sec == nil {
		return nil, nil, fmt.Errorf("cluster %s has no %s secret: create one with `kops create secret ciliumpassword -f FILE` (FILE: `keys: 1+ rfc4106(gcm(aes)) <40 hex digits> 128`), see kOps' docs/networking/cilium.md", s.Cluster, CiliumPasswordSecret)
	}
	k, err := ciliumipsec.ParseSecret(sec.Data)
	if err != nil {
		return nil, nil, fmt.Errorf("secret %s of cluster %s: %w", CiliumPasswordSecret, s.Cluster, err)
	}
	return bytes.Clone(sec.Data), k, nil
}

// ciliumCheckCluster refuses a cluster without Cilium: kOps deploys no
// cilium-ipsec-keys Secret for it (template_functions.go defines
// CiliumSecret only with spec.networking.cilium). It returns a note when
// Cilium does not encrypt with IPsec, so the key is deployed but unused.
func (s *Store) ciliumCheckCluster() (string, error) {
	c := s.cluster.Spec.Networking.Cilium
	if c == nil {
		return "", fmt.Errorf("cluster %s does not use Cilium (spec.networking.cilium is not set): kOps deploys no cilium-ipsec-keys Secret for it, so there is no Cilium IPsec key to rotate", s.Cluster)
	}
	if !c.EnableEncryption || (c.EncryptionType != "" && c.EncryptionType != kops.CiliumEncryptionTypeIPSec) {
		return fmt.Sprintf("cluster %s does not encrypt with Cilium IPsec (spec.networking.cilium.enableEncryption: %t, encryptionType: %q): the key is deployed but not used", s.Cluster, c.EnableEncryption, c.EncryptionType), nil
	}
	return "", nil
}

// ciliumJournal is the rotation's record,
// <configBase>/backups/kops-rotate/cilium-ipsec.yaml: next to the keyset
// rotation's journal, under the prefix `kops delete cluster` accepts (see
// journalPath), written with the same precondition (Journal).
func (s *Store) ciliumJournal() (*Journal, error) {
	base, err := registry.ConfigBase(s.vfsContext, s.cluster)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", s.Cluster, err)
	}
	return &Journal{Path: base.Join("backups", "kops-rotate", "cilium-ipsec.yaml"), Cluster: s.cluster}, nil
}

func ciliumDigest(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// RotateCiliumIPsecKey writes the next Cilium IPsec key to the
// ciliumpassword secret, as `kops create secret ciliumpassword --force`
// would: the next key id (wrapping 15 to 1), the same algorithm, key
// lengths and "+", new bytes from rnd (crypto/rand when nil). The intent
// is recorded first (the SPIs and digests of the old and new data), so a
// re-run after a crash recognises the write; the secret is read again and
// compared before the write, which is refused if it changed. The record
// is then marked. It returns the change, without key bytes. A rotation
// whose write is done but whose kops steps are not is refused: it is
// finished (RunCiliumIPsecRotation) before the next one starts.
func (s *Store) RotateCiliumIPsecKey(ctx context.Context, now time.Time, rnd io.Reader) (*CiliumIPsecChange, error) {
	p, _, j, err := s.ciliumState(ctx)
	if err != nil {
		return nil, err
	}
	if p.Resuming {
		return nil, fmt.Errorf("the Cilium IPsec key rotation of cluster %s to key id %d (%s) has not finished: finish it (kops update cluster --yes, kops rolling-update cluster --yes) with `%s cilium-ipsec-key --yes` before rotating again", s.Cluster, p.ToSPI, j, display.KopsRotate(ctx))
	}
	return s.rotateCilium(ctx, j, now, rnd)
}

// rotateCilium is RotateCiliumIPsecKey with j loaded: the record it
// writes starts a new rotation.
func (s *Store) rotateCilium(ctx context.Context, j *Journal, now time.Time, rnd io.Reader) (*CiliumIPsecChange, error) {
	if _, err := s.ciliumCheckCluster(); err != nil {
		return nil, err
	}
	was, k, err := s.CiliumIPsecKey(ctx)
	if err != nil {
		return nil, err
	}
	next, err := k.Next(rnd)
	if err != nil {
		return nil, err
	}
	data, err := next.SecretData()
	if err != nil {
		return nil, err
	}
	r := &procedure.Record{Procedure: ciliumProcedure, Started: now, Updated: now}
	if err := r.Put(factCiliumRotation, ciliumRotationFact{From: k.SPI, To: next.SPI, OldSHA256: ciliumDigest(was), NewSHA256: ciliumDigest(data)}); err != nil {
		return nil, err
	}
	if err := j.Save(ctx, r); err != nil {
		return nil, fmt.Errorf("recording the Cilium IPsec key rotation of cluster %s: %w", s.Cluster, err)
	}
	cur, _, err := s.CiliumIPsecKey(ctx)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(cur, was) {
		return nil, fmt.Errorf("secret %s of cluster %s changed since it was read: nothing was written; re-run to start from what it holds now", CiliumPasswordSecret, s.Cluster)
	}
	ss, err := s.clientset.SecretStore(s.cluster)
	if err != nil {
		return nil, fmt.Errorf("opening the secret store of cluster %s: %w", s.Cluster, err)
	}
	if _, err := ss.ReplaceSecret(CiliumPasswordSecret, &fi.Secret{Data: data}); err != nil {
		return nil, fmt.Errorf("writing secret %s of cluster %s: %w", CiliumPasswordSecret, s.Cluster, err)
	}
	r.Mark(CiliumStepWrite, now)
	r.Updated = now
	if err := j.Save(ctx, r); err != nil {
		// The secret holds the new key; the re-run recognises it by its digest.
		return nil, fmt.Errorf("secret %s of cluster %s was written (key id %d -> %d), but recording it failed: %w; re-run to go on", CiliumPasswordSecret, s.Cluster, k.SPI, next.SPI, err)
	}
	return &CiliumIPsecChange{OldSPI: k.SPI, NewSPI: next.SPI, Key: next.String(), At: now}, nil
}

// CiliumIPsecOptions of RunCiliumIPsecRotation.
type CiliumIPsecOptions struct {
	// Yes writes the key and runs the kops commands; without it nothing
	// is changed and the plan is returned.
	Yes bool
	// Runner runs the kops CLI steps.
	Runner Runner
	// Out gets the progress lines.
	Out io.Writer
	// Now is the clock (time.Now when nil); Rand the key source
	// (crypto/rand when nil).
	Now  func() time.Time
	Rand io.Reader
	// KopsVersion returns the version of the kops CLI the steps run; nil
	// skips the check against the cluster's kops-version.txt.
	KopsVersion func(ctx context.Context) (string, error)
}

// CiliumIPsecStep is one step of the plan.
type CiliumIPsecStep struct {
	// Name is the step (CiliumSteps).
	Name string `json:"name"`
	// Command is what the step runs (the kops command line, or what is
	// written: never a key).
	Command string `json:"command"`
	// Done is when the record marked it done.
	Done *time.Time `json:"done,omitempty"`
}

// CiliumIPsecPlan is where a Cilium IPsec key rotation stands: the key id
// the secret holds, the one it holds after the rotation, and the steps.
type CiliumIPsecPlan struct {
	// CurrentSPI is the key id the secret holds now.
	CurrentSPI uint8 `json:"currentSPI"`
	// FromSPI and ToSPI are the rotation's: the key id it replaces and
	// the one it writes (ToSPI is CurrentSPI once the write is done).
	FromSPI uint8 `json:"fromSPI"`
	ToSPI   uint8 `json:"toSPI"`
	// Key describes the key the secret holds now (no key bytes).
	Key string `json:"key"`
	// Resuming says the record holds a rotation that has not finished:
	// its write is not repeated.
	Resuming bool `json:"resuming,omitempty"`
	// Started is when the rotation being resumed started.
	Started *time.Time `json:"started,omitempty"`
	// Steps in order.
	Steps []CiliumIPsecStep `json:"steps"`
	// Notes about the cluster (Cilium encryption not enabled).
	Notes []string `json:"notes,omitempty"`
	// Record is the record file.
	Record string `json:"record"`
	// Change is the write this run made (with Yes).
	Change *CiliumIPsecChange `json:"change,omitempty"`
}

// Complete reports whether every step is done.
func (p *CiliumIPsecPlan) Complete() bool {
	for _, st := range p.Steps {
		if st.Done == nil {
			return false
		}
	}
	return true
}

// ciliumArgs are the kops arguments of a CLI step.
func (s *Store) ciliumArgs(step string) []string {
	switch step {
	case CiliumStepUpdate:
		return []string{"update", "cluster", "--yes", "--name", s.Cluster, "--state", s.StateStore}
	case CiliumStepRoll:
		return []string{"rolling-update", "cluster", "--yes", "--name", s.Cluster, "--state", s.StateStore}
	}
	return nil
}

// ciliumState reads the secret and the record: the plan, the record (nil
// when a new rotation starts) and the journal it was loaded from.
func (s *Store) ciliumState(ctx context.Context) (*CiliumIPsecPlan, *procedure.Record, *Journal, error) {
	note, err := s.ciliumCheckCluster()
	if err != nil {
		return nil, nil, nil, err
	}
	data, k, err := s.CiliumIPsecKey(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	j, err := s.ciliumJournal()
	if err != nil {
		return nil, nil, nil, err
	}
	r, err := j.Load(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	p := &CiliumIPsecPlan{CurrentSPI: k.SPI, FromSPI: k.SPI, ToSPI: ciliumipsec.NextSPI(k.SPI), Key: k.String(), Record: j.String()}
	if note != "" {
		p.Notes = append(p.Notes, note)
	}
	var f ciliumRotationFact
	found := false
	if r != nil {
		if r.Procedure != ciliumProcedure {
			return nil, nil, nil, fmt.Errorf("%s is not a Cilium IPsec key rotation record (procedure %q): remove it (a record only) and re-run", j, r.Procedure)
		}
		if found, err = r.Get(factCiliumRotation, &f); err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w: remove it (a record only) and re-run", j, err)
		}
	}
	unfinished := found && !r.Marked(CiliumStepRoll)
	switch {
	case unfinished && ciliumDigest(data) == f.NewSHA256:
		// Our write is in the secret: resume after it.
		p.Resuming, p.FromSPI, p.ToSPI = true, f.From, f.To
		t := r.Started
		p.Started = &t
		if !r.Marked(CiliumStepWrite) {
			r.Mark(CiliumStepWrite, r.Updated) // the write happened; the crash came before its mark
		}
	case unfinished && ciliumDigest(data) == f.OldSHA256:
		// Recorded, never written: a new rotation from what the secret holds.
		r = nil
	case unfinished:
		return nil, nil, nil, fmt.Errorf("secret %s of cluster %s changed since the unfinished rotation in %s (key id %d -> %d, started %s) wrote it: check the key Cilium has, then remove %s (a record only) and re-run", CiliumPasswordSecret, s.Cluster, j, f.From, f.To, r.Started.UTC().Format(time.RFC3339), j)
	default:
		r = nil // none, or a finished rotation: a new one
	}
	for _, step := range CiliumSteps {
		st := CiliumIPsecStep{Name: step}
		if step == CiliumStepWrite {
			st.Command = fmt.Sprintf("write secret %s through kOps' secret store: key id %d -> %d, same algorithm, key length and \"+\", new random key", CiliumPasswordSecret, p.FromSPI, p.ToSPI)
		} else {
			st.Command = "kops " + strings.Join(s.ciliumArgs(step), " ")
		}
		if r != nil {
			if t, ok := r.Steps[step]; ok {
				st.Done = &t
			}
		}
		p.Steps = append(p.Steps, st)
	}
	return p, r, j, nil
}

// CiliumIPsecStatus is where the cluster's Cilium IPsec key rotation
// stands, read from the secret and the record. It writes nothing.
func (s *Store) CiliumIPsecStatus(ctx context.Context) (*CiliumIPsecPlan, error) {
	p, _, _, err := s.ciliumState(ctx)
	return p, err
}

// RunCiliumIPsecRotation rotates the Cilium IPsec key as kOps and Cilium
// document it: the next key in the ciliumpassword secret
// (RotateCiliumIPsecKey), then `kops update cluster --yes` and `kops
// rolling-update cluster --yes`, each marked in the record when done. A
// re-run after a failure or crash resumes the unfinished rotation (it
// recognises its own write by the secret's digest) and never writes the
// key twice; once every step is done, a run starts the next rotation.
// Without Yes it only returns the plan.
func (s *Store) RunCiliumIPsecRotation(ctx context.Context, o CiliumIPsecOptions) (*CiliumIPsecPlan, error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	p, r, j, err := s.ciliumState(ctx)
	if err != nil {
		return nil, err
	}
	if !o.Yes {
		return p, nil
	}
	if o.KopsVersion != nil {
		have, err := o.KopsVersion(ctx)
		if err != nil {
			return nil, err
		}
		if err := s.CheckKopsVersion(ctx, have); err != nil {
			return nil, err
		}
	}
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	if r == nil {
		fmt.Fprintf(out, "==> %s\n", p.Steps[0].Command)
		c, err := s.rotateCilium(ctx, j, now(), o.Rand)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "    %s\n", c)
		p.Change, p.CurrentSPI, p.Key = c, c.NewSPI, c.Key
		if r, err = j.Load(ctx); err != nil {
			return nil, err
		}
		if r == nil {
			return nil, fmt.Errorf("%s: the record of the write is gone: re-run", j)
		}
		t := c.At
		p.Steps[0].Done = &t
	}
	for i, step := range CiliumSteps[1:] {
		st := &p.Steps[i+1]
		if r.Marked(step) {
			continue
		}
		fmt.Fprintf(out, "==> %s\n", st.Command)
		if err := o.Runner(ctx, s.ciliumArgs(step)); err != nil {
			r.Failed, r.Error, r.Updated = step, oneLine(err.Error()), now()
			if serr := j.Save(ctx, r); serr != nil {
				return nil, errors.Join(err, serr)
			}
			return nil, fmt.Errorf("%w; re-run to resume at %s (the key is not written again)", err, step)
		}
		t := now()
		r.Mark(step, t)
		r.Failed, r.Error, r.Updated = "", "", t
		if err := j.Save(ctx, r); err != nil {
			return nil, fmt.Errorf("%s ran, but recording it failed: %w; re-run (it runs again)", st.Command, err)
		}
		st.Done = &t
	}
	return p, nil
}

// oneLine is the first line of s.
func oneLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
