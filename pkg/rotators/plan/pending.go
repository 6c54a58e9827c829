package plan

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/model/changes"
	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
	"github.com/kube-rotate/kube-rotate/pkg/model/values"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

// Annotations on a pending companion.
const (
	// RotationIDAnnotation names the plan run that made the pending values.
	RotationIDAnnotation = v1alpha1.RotationIDAnnotation
	// PendingOfLabel labels a pending companion with its Secret's name.
	PendingOfLabel = v1alpha1.PendingOfLabel
	// ItemAnnotation names the plan item.
	ItemAnnotation = v1alpha1.ItemAnnotation
)

// TokenKeyPrefix prefixes, in a pending companion, the plaintext token of a
// hashed key: it goes to the delivery Secret at finish, never into the
// Secret holding the hash.
const TokenKeyPrefix = "kube-rotate.token."

// SecretChanges turns a plan item's secret spec into rotation changes, and
// for a hashed key the plaintext token to deliver, keyed by the hash's key.
func SecretChanges(s *planspec.SecretSpec) ([]secret.Change, map[string][]byte, error) {
	var out []secret.Change
	tokens := map[string][]byte{}
	if h := s.Hashed; h != nil {
		name, key, _ := h.DeliverTo()
		c, tok, err := changes.Hashed(h.Key, h.TokenBytes, h.Format, "secret/"+name+" key "+key)
		if err != nil {
			return nil, nil, fmt.Errorf("hashed %s: %w", h.Key, err)
		}
		out = append(out, c)
		tokens[h.Key] = tok
	}
	spec := changes.Spec{}
	for _, g := range s.Generate {
		gen, err := values.ParseSpec(g.Spec)
		if err != nil {
			return nil, nil, fmt.Errorf("key %s: %w", g.Key, err)
		}
		spec.Generate = append(spec.Generate, changes.Generate{Key: g.Key, Gen: gen})
	}
	passwordSpec := planspec.DefaultPasswordSpec
	if s.URLPassword != nil {
		spec.URLPassword = s.URLPassword.Keys
		if s.URLPassword.Generate != "" {
			passwordSpec = s.URLPassword.Generate
		}
	}
	for _, f := range s.JSONFields {
		jf := changes.JSONField{Key: f.Key, Field: f.Field, URLPassword: f.Spec == "url-password"}
		if !jf.URLPassword {
			gen, err := values.ParseSpec(f.Spec)
			if err != nil {
				return nil, nil, fmt.Errorf("key %s field %s: %w", f.Key, f.Field, err)
			}
			jf.Gen = gen
		}
		spec.JSONFields = append(spec.JSONFields, jf)
	}
	if spec.NeedsPassword() {
		gen, err := values.ParseSpec(passwordSpec)
		if err != nil {
			return nil, nil, fmt.Errorf("urlPassword.generate: %w", err)
		}
		spec.Password = changes.Password{Gen: gen}
	}
	cs, err := changes.Build(spec)
	if err != nil {
		return nil, nil, err
	}
	out = append(out, cs...)
	return out, tokens, nil
}

// PendingName is the pending companion of a Secret.
func PendingName(secret string) string { return secret + planspec.PendingSuffix }

// Pending holds an item's new values before they are in use.
type Pending struct {
	// Values by key: what finish moves into place.
	Values map[string][]byte
	// Current values of the same keys (absent keys are missing).
	Current map[string][]byte
	// Tokens are the plaintext tokens of hashed keys, by key.
	Tokens map[string][]byte
	// Reused is true when an earlier run of this rotation made them.
	Reused bool
}

// Fingerprints of the pending values, by key.
func (p *Pending) Fingerprints() map[string]string {
	out := make(map[string]string, len(p.Values))
	for k, v := range p.Values {
		out[k] = values.Fingerprint(v)
	}
	return out
}

// CreatePending is the create step: it makes the new values of one item
// from the Secret's current ones and writes them to NAME-pending. Nothing in
// use changes. A pending companion of the same rotation is reused, never
// regenerated: hooks of an interrupted run may already have applied it.
// One of another rotation is refused.
func CreatePending(ctx context.Context, kc kubernetes.Interface, ns, item, rotationID string, s *planspec.SecretSpec, cs []secret.Change, tokens map[string][]byte) (*Pending, error) {
	p, cur, err := readPending(ctx, kc, ns, item, rotationID, s, cs, tokens)
	if err != nil || p.Reused {
		return p, err
	}
	if err := makePending(ctx, kc, ns, item, rotationID, s, cs, tokens, cur, p); err != nil {
		return nil, err
	}
	return p, nil
}

// ReadPending reads back the values create made for this rotation, or
// returns nil when NAME-pending does not exist (one of another rotation is
// refused, as by CreatePending). It writes nothing.
func ReadPending(ctx context.Context, kc kubernetes.Interface, ns, item, rotationID string, s *planspec.SecretSpec, cs []secret.Change, tokens map[string][]byte) (*Pending, error) {
	p, _, err := readPending(ctx, kc, ns, item, rotationID, s, cs, tokens)
	if err != nil || !p.Reused {
		return nil, err
	}
	return p, nil
}

// readPending reads the Secret and its pending companion: p.Reused when
// the companion holds this rotation's values.
func readPending(ctx context.Context, kc kubernetes.Interface, ns, item, rotationID string, s *planspec.SecretSpec, cs []secret.Change, tokens map[string][]byte) (*Pending, *corev1.Secret, error) {
	secrets := kc.CoreV1().Secrets(ns)
	cur, err := secrets.Get(ctx, s.Name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, fmt.Errorf("item %s: secret/%s not found in namespace %s: create it or fix the plan", item, s.Name, ns)
		}
		return nil, nil, fmt.Errorf("item %s: reading secret/%s: %w", item, s.Name, err)
	}
	p := &Pending{Values: map[string][]byte{}, Current: map[string][]byte{}, Tokens: map[string][]byte{}}
	for _, c := range cs {
		if v, ok := cur.Data[c.Key]; ok {
			p.Current[c.Key] = v
		}
	}
	name := PendingName(s.Name)
	existing, err := secrets.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return p, cur, nil
	case err != nil:
		return nil, nil, fmt.Errorf("item %s: reading secret/%s: %w", item, name, err)
	}
	if existing.Labels[PendingOfLabel] != s.Name {
		return nil, nil, fmt.Errorf("item %s: secret/%s exists and is not kube-rotate's pending companion of secret/%s: rename it or delete it", item, name, s.Name)
	}
	if id := existing.Annotations[RotationIDAnnotation]; id != rotationID {
		return nil, nil, fmt.Errorf("item %s: secret/%s holds values of another rotation (%s): finish or undo that run, or delete the companion", item, name, id)
	}
	for _, c := range cs {
		v, ok := existing.Data[c.Key]
		if !ok {
			return nil, nil, fmt.Errorf("item %s: secret/%s lacks key %s: delete it and re-run to make the values again", item, name, c.Key)
		}
		p.Values[c.Key] = v
	}
	for k := range tokens {
		v, ok := existing.Data[TokenKeyPrefix+k]
		if !ok {
			return nil, nil, fmt.Errorf("item %s: secret/%s lacks the token of %s: delete it and re-run to make the values again", item, name, k)
		}
		p.Tokens[k] = v
	}
	p.Reused = true
	return p, cur, nil
}

// makePending makes the new values into p and writes NAME-pending.
func makePending(ctx context.Context, kc kubernetes.Interface, ns, item, rotationID string, s *planspec.SecretSpec, cs []secret.Change, tokens map[string][]byte, cur *corev1.Secret, p *Pending) error {
	secrets := kc.CoreV1().Secrets(ns)
	name := PendingName(s.Name)
	for _, c := range cs {
		old, ok := cur.Data[c.Key]
		if !ok && !s.CreateKeys {
			return fmt.Errorf("item %s: secret/%s has no key %s: add it, or set createKeys: true", item, s.Name, c.Key)
		}
		v, err := c.Make(old, ok)
		if err != nil {
			return fmt.Errorf("item %s: secret/%s key %s %v", item, s.Name, c.Key, err)
		}
		p.Values[c.Key] = v
	}
	ps := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Labels:          map[string]string{PendingOfLabel: s.Name, v1alpha1.ManagedByLabel: v1alpha1.ManagedBy},
			Annotations:     map[string]string{RotationIDAnnotation: rotationID, ItemAnnotation: item, v1alpha1.Source: s.Name},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Secret", Name: cur.Name, UID: cur.UID}},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{},
	}
	for k, v := range p.Values {
		ps.Data[k] = v
	}
	for k, v := range tokens {
		p.Tokens[k] = v
		ps.Data[TokenKeyPrefix+k] = v
	}
	if _, err := secrets.Create(ctx, ps, metav1.CreateOptions{FieldManager: v1alpha1.ManagedBy}); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("item %s: secret/%s appeared while this run made it: another run is going on; re-run when it ends", item, name)
		}
		return fmt.Errorf("item %s: writing secret/%s: %w", item, name, err)
	}
	return nil
}
