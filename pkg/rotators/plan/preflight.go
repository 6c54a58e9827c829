package plan

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/consumers"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/keystore"
	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

// Preflight checks, before anything is written, that every Secret the
// plan changes exists with the keys it edits, and that its NAME-previous
// holds no unfinished earlier rotation's values the plan would drop
// (secret.CheckCompanion). The first problem is
// returned as one line naming the item.
func Preflight(ctx context.Context, kc kubernetes.Interface, p *planspec.Plan, defaultNS string) error {
	items, err := p.Order()
	if err != nil {
		return err
	}
	// The Secrets and companions of each namespace, read at once.
	names := map[string][]string{}
	for _, it := range items {
		if it.JWKS == nil {
			ns := it.Namespace(defaultNS)
			names[ns] = append(names[ns], it.SecretName())
		}
	}
	snaps := map[string]*secret.Snapshot{}
	for ns, n := range names {
		if snaps[ns], err = secret.ReadSnapshot(ctx, kc, ns, n, true); err != nil {
			return fmt.Errorf("plan: reading the secrets of namespace %s: %w", ns, err)
		}
	}
	for _, it := range items {
		ns := it.Namespace(defaultNS)
		if it.JWKS != nil {
			st := &keystore.SecretStore{Client: kc, Namespace: ns, Name: it.JWKS.Secret, Key: it.JWKS.Key}
			if _, _, err := st.Load(ctx, false); err != nil {
				return fmt.Errorf("plan: item %q: %w", it.Name, err)
			}
			continue
		}
		s, err := snaps[ns].Get(ctx, it.SecretName())
		if err != nil {
			return fmt.Errorf("plan: item %q: %w", it.Name, err)
		}
		if s == nil {
			return fmt.Errorf("plan: item %q: secret/%s not found in namespace %s: create it or fix the plan", it.Name, it.SecretName(), ns)
		}
		var edited []string
		if it.Secret.URLPassword != nil {
			edited = append(edited, it.Secret.URLPassword.Keys...)
		}
		for _, f := range it.Secret.JSONFields {
			edited = append(edited, f.Key)
		}
		if !it.Secret.CreateKeys {
			for _, g := range it.Secret.Generate {
				edited = append(edited, g.Key)
			}
		}
		for _, k := range edited {
			if _, ok := s.Data[k]; !ok {
				return fmt.Errorf("plan: item %q: secret/%s has no key %s: fix the plan (or set createKeys: true for generated keys)", it.Name, it.SecretName(), k)
			}
		}
		gen, err := v1alpha1.GenerationOf(s.Annotations)
		if err != nil {
			return fmt.Errorf("plan: item %q: secret/%s: %w: fix or remove the annotation", it.Name, it.SecretName(), err)
		}
		comp, err := snaps[ns].Get(ctx, secret.CompanionName(s.Name))
		if err != nil {
			return fmt.Errorf("plan: item %q: %w", it.Name, err)
		}
		if err := secret.CheckCompanionOf(ctx, comp, s, gen+1, p.Spec.ReplacePrevious, time.Now(), "set spec.replacePrevious: true in the plan"); err != nil {
			return fmt.Errorf("plan: item %q: %w", it.Name, err)
		}
	}
	return nil
}

// Describe prints what apply would do, item by item: the engine's list of
// the run's steps (what each does and, for a run under way, which are
// done), and which workloads would restart. It reads the cluster and
// changes nothing.
func Describe(ctx context.Context, w io.Writer, kc kubernetes.Interface, p *planspec.Plan, defaultNS string) error {
	pr, err := newRun(ctx, Options{Plan: p, Clients: secret.Clients{Kube: kc}, Namespace: defaultNS})
	if err != nil {
		return err
	}
	proc := pr.procedure()
	statuses, rec, err := proc.Plan(ctx)
	if err != nil {
		return err
	}
	// Done marks only for a run of this very plan.
	marks := rec.String(factFingerprint) == p.Fingerprint()
	byItem := map[string][]string{}
	for i, st := range statuses {
		s := stepOf(proc.Steps[i])
		if s.item == nil {
			continue
		}
		line := fmt.Sprintf("   %s: %s", s.short, st.What)
		if marks && st.Done && st.What != "no hook" {
			line += " (done)"
		}
		byItem[s.item.Name] = append(byItem[s.item.Name], line)
	}
	fmt.Fprintf(w, "plan %s: %d items, restart %s\n", p.Metadata.Name, len(pr.items), p.Spec.Restart)
	indexes := map[string]*consumers.Index{}
	for i, it := range pr.items {
		ns := it.Namespace(defaultNS)
		fmt.Fprintf(w, "%d. %s: secret/%s in %s, keys %s\n", i+1, it.Name, it.SecretName(), ns, strings.Join(it.Keys(), ", "))
		for _, line := range byItem[it.Name] {
			fmt.Fprintln(w, line)
		}
		ix := indexes[ns]
		if ix == nil {
			if ix, err = consumers.NewIndex(ctx, kc, ns); err != nil {
				return err
			}
			indexes[ns] = ix
		}
		for _, wl := range ix.UsersOf(it.SecretName(), it.Keys()) {
			fmt.Fprintf(w, "   consumer: %s/%s\n", strings.ToLower(wl.Kind), wl.Name)
		}
	}
	return nil
}
