package plan

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/hooks"
	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
)

// RunHook runs an item's set or test hook with the pending and current
// values; it returns nil and no error when the item has no such hook.
// Errors name the item and the step and hold no value.
func RunHook(ctx context.Context, kc kubernetes.Interface, p *planspec.Plan, it *planspec.Item, step, ns, rotationID string, pend *Pending) (*hooks.Result, error) {
	var h *planspec.Hook
	switch step {
	case StepSet:
		h = it.Hooks.Set
	case StepTested:
		h = it.Hooks.Test
	default:
		return nil, fmt.Errorf("internal: %s has no hook", step)
	}
	if h == nil {
		return nil, nil
	}
	v := hooks.Values{Pending: pend.Values, Current: pend.Current, Secret: it.SecretName(), Namespace: ns, Item: it.Name, Step: step, RotationID: rotationID}
	var (
		res hooks.Result
		err error
	)
	switch {
	case h.Exec != nil:
		env := make([]corev1.EnvVar, 0, len(h.Exec.Env))
		for _, e := range h.Exec.Env {
			env = append(env, corev1.EnvVar{Name: e.Name, Value: e.Value})
		}
		ex := &hooks.Exec{Command: h.Exec.Command, Values: string(h.Exec.Values), Env: env, Timeout: h.Exec.Timeout.Duration, WorkingDir: p.HookDir(h.Exec)}
		res, err = ex.Run(ctx, v)
	case h.Job != nil:
		j := &hooks.Job{Client: kc, Namespace: ns, Spec: h.Job.Template.JobSpec, Timeout: h.Job.Timeout.Duration,
			PendingSecret: PendingName(it.SecretName()), CurrentSecret: it.SecretName()}
		if it.JWKS != nil {
			j.PendingSecret = "" // a key set has no pending companion
		}
		res, err = j.Run(ctx, v)
	default:
		return nil, fmt.Errorf("item %s: the %s hook has neither exec nor job", it.Name, step)
	}
	if err != nil {
		return &res, err
	}
	return &res, nil
}
