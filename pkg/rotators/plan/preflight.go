package plan

import (
	"context"
	"fmt"
	"io"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/consumers"
	"github.com/kube-rotate/kube-rotate/pkg/model/jwks"
	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
)

// Preflight checks, before anything is written, that every Secret the
// plan changes exists with the keys it edits. The first problem is
// returned as one line naming the item.
func Preflight(ctx context.Context, kc kubernetes.Interface, p *planspec.Plan, defaultNS string) error {
	items, err := p.Order()
	if err != nil {
		return err
	}
	for _, it := range items {
		ns := it.Namespace(defaultNS)
		if it.JWKS != nil {
			st := &jwks.SecretStore{Client: kc, Namespace: ns, Name: it.JWKS.Secret, Key: it.JWKS.Key}
			if _, _, err := st.Load(ctx, false); err != nil {
				return fmt.Errorf("plan: item %q: %w", it.Name, err)
			}
			continue
		}
		s, err := kc.CoreV1().Secrets(ns).Get(ctx, it.SecretName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("plan: item %q: secret/%s not found in namespace %s: create it or fix the plan", it.Name, it.SecretName(), ns)
		}
		if err != nil {
			return fmt.Errorf("plan: item %q: reading secret/%s in namespace %s: %w", it.Name, it.SecretName(), ns, err)
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
	}
	return nil
}

// Describe prints what apply would do, item by item, and which workloads
// would restart; it reads the cluster and changes nothing.
func Describe(ctx context.Context, w io.Writer, kc kubernetes.Interface, p *planspec.Plan, defaultNS string) error {
	items, err := p.Order()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "plan %s: %d items, restart %s\n", p.Metadata.Name, len(items), p.Spec.Restart)
	indexes := map[string]*consumers.Index{}
	for i, it := range items {
		ns := it.Namespace(defaultNS)
		fmt.Fprintf(w, "%d. %s: secret/%s in %s, keys %s\n", i+1, it.Name, it.SecretName(), ns, strings.Join(it.Keys(), ", "))
		if it.JWKS != nil {
			fmt.Fprintf(w, "   create: publish a new key as next in secret/%s, restart its verifiers\n", it.SecretName())
		} else {
			fmt.Fprintf(w, "   create: new values in secret/%s\n", PendingName(it.SecretName()))
		}
		for _, h := range []struct {
			step string
			hook *planspec.Hook
		}{{StepSet, it.Hooks.Set}, {StepTested, it.Hooks.Test}} {
			switch {
			case h.hook == nil:
				fmt.Fprintf(w, "   %s: no hook\n", h.step)
			case h.hook.Exec != nil:
				fmt.Fprintf(w, "   %s: run %s (values in a file or on stdin, never on the command line)\n", h.step, strings.Join(h.hook.Exec.Command, " "))
			default:
				fmt.Fprintf(w, "   %s: run a Job mounting secret/%s and secret/%s\n", h.step, PendingName(it.SecretName()), it.SecretName())
			}
		}
		if it.JWKS != nil {
			fmt.Fprintf(w, "   finish: the new key signs; the previous one keeps verifying\n")
		} else {
			fmt.Fprintf(w, "   finish: values into secret/%s, old ones kept in secret/%s%s\n", it.SecretName(), it.SecretName(), planspec.PreviousSuffix)
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
