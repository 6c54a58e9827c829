// Package jwk is the key-set rotation on the procedure engine
// (pkg/procedure): publish a new key as next so every verifier learns it,
// restart the verifiers, promote the key to signing key, restart the
// signers. `kubectl rotate jwk rotate` runs these steps as one procedure;
// key-set items of rotation plans run the same operations from their own
// steps (PublishKey, RestartConsumers, PromoteKey). The key-set model
// itself (which key signs, what add and promote change) is jwks.Ring's.
//
// State: whether a key is published and whether it signs is read from the
// key set; the journal (a ConfigMap kube-rotate-jwk-SECRET-KEY) keeps only
// the kid this rotation is for and the restarts done, so a run killed
// between promote and the restart that follows resumes with that restart
// and never publishes a second key.
package jwk

import (
	"context"
	"fmt"
	"io"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/consumers"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/keystore"
	"github.com/kube-rotate/kube-rotate/pkg/display"
	"github.com/kube-rotate/kube-rotate/pkg/model/jwks"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// Journal facts: the kid a rotation publishes and promotes, whether this
// rotation added it (not reused one an earlier run published), and the
// kids deleted at promote.
const (
	FactKID     = "kid"
	FactAdded   = "added"
	FactDeleted = "deleted"
)

// Steps of the procedure.
const (
	StepPublish          = "publish"
	StepRestartVerifiers = "restart-verifiers"
	StepPromote          = "promote"
	StepRestartSigners   = "restart-signers"
)

// SecretLabel labels a rotation's journal with the Secret it is for.
const SecretLabel = v1alpha1.JWKSecretLabel

// Target is a key set kept in one key of a Secret, and how its rotation
// runs.
type Target struct {
	Kube      kubernetes.Interface
	Dynamic   dynamic.Interface
	Namespace string
	Secret    string
	Key       string
	// Layout: "" detects it from the set.
	Layout jwks.Layout
	// Add: the new key's algorithm and kid scheme; zero: the layout's.
	Add jwks.AddOptions
	// DeleteOlderThan, when > 0, also deletes keys that stopped signing
	// longer ago, at promote.
	DeleteOlderThan time.Duration
	// Restart: restart the Secret key's consumers after publish and after
	// promote, and wait for them (Timeout each).
	Restart bool
	Timeout time.Duration
	// By goes into the Secret's history.
	By       string
	Progress io.Writer
	Now      func() time.Time
}

func (t *Target) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *Target) progress(format string, args ...any) {
	if t.Progress != nil {
		fmt.Fprintf(t.Progress, format+"\n", args...)
	}
}

// Store is the Secret store of the key set.
func (t *Target) Store() *keystore.SecretStore {
	return &keystore.SecretStore{Client: t.Kube, Namespace: t.Namespace, Name: t.Secret, Key: t.Key}
}

// Load reads the key set.
func (t *Target) Load(ctx context.Context) (*keystore.SecretStore, *jwks.Ring, error) {
	st := t.Store()
	set, rec, err := st.Load(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	r := jwks.NewRing(set, t.Layout, rec)
	r.Now = t.now
	r.Tool = display.KubectlRotate(ctx)
	return st, r, nil
}

// PublishKey makes sure a key for this rotation is published as next and
// returns its kid, and whether this call added it: kid itself when the set
// has it, else the newest next key (an earlier run published it and
// stopped), else a new key.
func (t *Target) PublishKey(ctx context.Context, kid string) (string, bool, error) {
	st, r, err := t.Load(ctx)
	if err != nil {
		return "", false, err
	}
	if kid != "" && r.Set.Find(kid) >= 0 {
		return kid, false, nil
	}
	if next := r.NewestNext(); next != "" {
		t.progress("%s: key %s is already published as next (an earlier run stopped); reusing it", st, next)
		return next, false, nil
	}
	k, err := r.Add(t.Add)
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", st, err)
	}
	if err := keystore.Save(ctx, st, r, "jwk-add", t.By); err != nil {
		return "", false, err
	}
	t.progress("%s: key %s published as next", st, k.KID)
	return k.KID, true, nil
}

// PromoteKey makes kid the signing key (and deletes keys past
// DeleteOlderThan); it returns the kids deleted.
func (t *Target) PromoteKey(ctx context.Context, kid string) ([]string, error) {
	st, r, err := t.Load(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := r.Promote(kid); err != nil {
		return nil, fmt.Errorf("%s: %w", st, err)
	}
	var gone []string
	if t.DeleteOlderThan > 0 {
		gone = r.Prune(t.DeleteOlderThan)
	}
	if err := keystore.Save(ctx, st, r, "jwk-promote", t.By); err != nil {
		return nil, err
	}
	t.progress("%s: key %s is now the signing key", st, kid)
	return gone, nil
}

// WithdrawKey deletes kid if it never signed (undo of a publish); a key
// that signs is refused: tokens it signed would stop verifying.
func (t *Target) WithdrawKey(ctx context.Context, kid string) error {
	st, r, err := t.Load(ctx)
	if err != nil {
		return err
	}
	i := r.Set.Find(kid)
	if i < 0 {
		return nil
	}
	if r.State(i) == jwks.StateActive {
		return fmt.Errorf("%s: key %s is already the signing key: undo does not demote it (tokens it signed would stop verifying); promote the previous key with kubectl rotate jwk promote if you must", st, kid)
	}
	if err := r.Delete(kid, 0, true); err != nil {
		return fmt.Errorf("%s: %w", st, err)
	}
	if err := keystore.Save(ctx, st, r, "jwk-delete", t.By); err != nil {
		return err
	}
	t.progress("%s: key %s withdrawn (it never signed)", st, kid)
	return nil
}

// RestartConsumers restarts the workloads that read the key set's Secret
// key and waits until they are healthy; it returns them (kind/name).
func (t *Target) RestartConsumers(ctx context.Context) ([]string, error) {
	ix, err := consumers.NewIndex(ctx, t.Kube, t.Namespace)
	if err != nil {
		return nil, err
	}
	ws := ix.UsersOf(t.Secret, []string{t.Key})
	if len(ws) == 0 {
		return nil, nil
	}
	return consumers.RestartAndWait(ctx, t.Kube, t.Dynamic, ws, t.Progress, t.Timeout)
}

// signs reports whether kid is the set's signing key.
func (t *Target) signs(ctx context.Context, kid string) (bool, error) {
	if kid == "" {
		return false, nil
	}
	_, r, err := t.Load(ctx)
	if err != nil {
		return false, err
	}
	i := r.ActiveIndex()
	return i >= 0 && r.Set.Keys[i].KID == kid, nil
}

// published reports whether the set holds kid.
func (t *Target) published(ctx context.Context, kid string) (bool, error) {
	if kid == "" {
		return false, nil
	}
	_, r, err := t.Load(ctx)
	if err != nil {
		return false, err
	}
	return r.Set.Find(kid) >= 0, nil
}

// Journal is where the rotation's journal lives: a ConfigMap next to the
// Secret.
func (t *Target) Journal() *procedure.ConfigMapJournal {
	return &procedure.ConfigMapJournal{Client: t.Kube, Namespace: t.Namespace,
		Name:   procedure.JournalName("kube-rotate-jwk", t.Secret, t.Key),
		Labels: map[string]string{SecretLabel: t.Secret}}
}

// Steps are the rotation's four steps.
func (t *Target) Steps() []procedure.Step {
	restart := func(name, who string) procedure.Step {
		s := &procedure.Func{StepName: name, What: "restart the workloads reading secret/" + t.Secret + " key " + t.Key + " (" + who + ") and wait until they are healthy",
			DoFunc: func(ctx context.Context, r *procedure.Record) error {
				restarted, err := t.RestartConsumers(ctx)
				if err != nil {
					return err
				}
				return r.Put(name, restarted)
			}}
		if !t.Restart {
			s.What = "no restart (--restart=none)"
			s.DoneFunc = func(context.Context, *procedure.Record) (bool, error) { return true, nil }
		}
		return s
	}
	return []procedure.Step{
		&procedure.Func{StepName: StepPublish, What: "publish a new key as next in secret/" + t.Secret + " key " + t.Key + " (verify only: who signs does not change)",
			DoneFunc: func(ctx context.Context, r *procedure.Record) (bool, error) {
				return t.published(ctx, r.String(FactKID))
			},
			DoFunc: func(ctx context.Context, r *procedure.Record) error {
				kid, added, err := t.PublishKey(ctx, r.String(FactKID))
				if err != nil {
					return err
				}
				if added {
					if err := r.Put(FactAdded, true); err != nil {
						return err
					}
				}
				return r.Put(FactKID, kid)
			},
			UndoFunc: func(ctx context.Context, r *procedure.Record) error { return t.WithdrawKey(ctx, r.String(FactKID)) },
		},
		restart("restart-verifiers", "they learn the new key"),
		&procedure.Func{StepName: StepPromote, What: "promote the new key to signing key (the previous one keeps verifying)",
			DoneFunc: func(ctx context.Context, r *procedure.Record) (bool, error) { return t.signs(ctx, r.String(FactKID)) },
			DoFunc: func(ctx context.Context, r *procedure.Record) error {
				gone, err := t.PromoteKey(ctx, r.String(FactKID))
				if err != nil {
					return err
				}
				return r.Put(FactDeleted, gone)
			},
			UndoFunc: func(ctx context.Context, r *procedure.Record) error { return t.WithdrawKey(ctx, r.String(FactKID)) },
		},
		restart("restart-signers", "they sign with the new key"),
	}
}

// Procedure is `kubectl rotate jwk rotate` on the engine.
func (t *Target) Procedure() *procedure.Procedure {
	return &procedure.Procedure{Name: "jwk rotate secret/" + t.Secret + " key " + t.Key, Steps: t.Steps(), Journal: t.Journal(),
		Progress: t.Progress, Now: t.Now}
}
