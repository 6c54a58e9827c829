// Package consumers finds the workloads that use a Secret, restarts them
// the way `kubectl rollout restart` does (once per workload, however many
// of its Secrets changed) and waits for their rollouts the way
// `kubectl rollout status` does.
package consumers

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
)

// The types of what is found are kube-rotate's API types (pkg/apis), so
// that every record printing them shares one definition.
type (
	// Use says how a workload reads a Secret.
	Use = v1alpha1.Use
	// Reference is one place in a pod spec that reads the Secret.
	Reference = v1alpha1.Reference
	// Workload is one workload that reads a Secret.
	Workload = v1alpha1.Workload
)

// The ways a pod spec can reference a Secret.
const (
	UseEnv              = v1alpha1.UseEnv
	UseEnvFrom          = v1alpha1.UseEnvFrom
	UseVolume           = v1alpha1.UseVolume
	UseProjected        = v1alpha1.UseProjected
	UseImagePullSecrets = v1alpha1.UseImagePullSecrets
)

// Kinds of workloads searched.
const (
	KindDeployment  = v1alpha1.KindDeployment
	KindStatefulSet = v1alpha1.KindStatefulSet
	KindDaemonSet   = v1alpha1.KindDaemonSet
	KindCronJob     = v1alpha1.KindCronJob
	KindPod         = v1alpha1.KindPod
)

// specOwner is a pod spec and the workload it belongs to.
type specOwner struct {
	kind, namespace, name string
	spec                  *corev1.PodSpec
	obj                   runtime.Object // as listed
}

// Index holds the pod specs of every workload in one namespace, listed
// once, so the users of many Secrets are found without listing again.
type Index struct {
	namespace string
	owners    []specOwner
}

// NewIndex lists Deployments, StatefulSets, DaemonSets, CronJobs and bare
// Pods (no controller) in namespace, once each.
func NewIndex(ctx context.Context, client kubernetes.Interface, namespace string) (*Index, error) {
	ix := &Index{namespace: namespace}
	deps, err := client.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing deployments in namespace %s: %w", namespace, err)
	}
	for i := range deps.Items {
		d := &deps.Items[i]
		ix.add(KindDeployment, d.Namespace, d.Name, &d.Spec.Template.Spec, d)
	}
	sts, err := client.AppsV1().StatefulSets(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing statefulsets in namespace %s: %w", namespace, err)
	}
	for i := range sts.Items {
		s := &sts.Items[i]
		ix.add(KindStatefulSet, s.Namespace, s.Name, &s.Spec.Template.Spec, s)
	}
	dss, err := client.AppsV1().DaemonSets(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing daemonsets in namespace %s: %w", namespace, err)
	}
	for i := range dss.Items {
		d := &dss.Items[i]
		ix.add(KindDaemonSet, d.Namespace, d.Name, &d.Spec.Template.Spec, d)
	}
	cjs, err := client.BatchV1().CronJobs(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing cronjobs in namespace %s: %w", namespace, err)
	}
	for i := range cjs.Items {
		c := &cjs.Items[i]
		ix.add(KindCronJob, c.Namespace, c.Name, &c.Spec.JobTemplate.Spec.Template.Spec, c)
	}
	pods, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing pods in namespace %s: %w", namespace, err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if metav1.GetControllerOf(p) != nil {
			continue // covered by its controller
		}
		ix.add(KindPod, p.Namespace, p.Name, &p.Spec, p)
	}
	return ix, nil
}

func (ix *Index) add(kind, ns, name string, spec *corev1.PodSpec, obj runtime.Object) {
	ix.owners = append(ix.owners, specOwner{kind: kind, namespace: ns, name: name, spec: spec, obj: obj})
}

// Object returns workload w as the index listed it, nil when it was not
// listed (a --restart-target of another namespace, say).
func (ix *Index) Object(w Workload) runtime.Object {
	if ix == nil {
		return nil
	}
	for _, o := range ix.owners {
		if o.kind == w.Kind && o.namespace == w.Namespace && o.name == w.Name {
			return o.obj
		}
	}
	return nil
}

// UsersOf returns the workloads that read Secret secret. With keys given,
// only references that read one of those keys (or the whole Secret) count.
// The result is sorted by kind and name.
func (ix *Index) UsersOf(secret string, keys []string) []Workload {
	var out []Workload
	for _, o := range ix.owners {
		refs := References(o.spec, secret)
		var used []Reference
		restart := false
		for _, r := range refs {
			if !readsAny(r, keys) {
				continue
			}
			used = append(used, r)
			if r.How != UseImagePullSecrets {
				restart = true
			}
		}
		if len(used) == 0 {
			continue
		}
		w := Workload{Kind: o.kind, Namespace: o.namespace, Name: o.name, References: used}
		switch {
		case !restart:
			w.Note = "uses the Secret only to pull images: new pods use the new value, running ones need nothing"
		case o.kind == KindCronJob:
			w.Note = "its next Job reads the new value; running Jobs keep the old one"
		case o.kind == KindPod:
			w.Note = "bare Pod (no controller): delete and recreate it to read the new value"
		default:
			w.Restart = true
		}
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return kindOrder(out[i].Kind) < kindOrder(out[j].Kind)
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func kindOrder(k string) int {
	for i, x := range []string{KindDeployment, KindStatefulSet, KindDaemonSet, KindCronJob, KindPod} {
		if k == x {
			return i
		}
	}
	return 99
}

// dockerConfigKeys are the keys image pulls read.
var dockerConfigKeys = []string{corev1.DockerConfigJsonKey, corev1.DockerConfigKey}

func readsAny(r Reference, keys []string) bool {
	if len(keys) == 0 {
		return true
	}
	read := r.Keys
	if r.How == UseImagePullSecrets {
		read = dockerConfigKeys
	}
	if len(read) == 0 {
		return true // the whole Secret
	}
	for _, k := range keys {
		for _, x := range read {
			if k == x {
				return true
			}
		}
	}
	return false
}

// References returns every place in spec that reads Secret secret:
// containers and init containers (env, envFrom), volumes (secret and
// projected) and imagePullSecrets.
func References(spec *corev1.PodSpec, secret string) []Reference {
	var refs []Reference
	containers := make([]corev1.Container, 0, len(spec.InitContainers)+len(spec.Containers))
	containers = append(containers, spec.InitContainers...)
	containers = append(containers, spec.Containers...)
	for _, c := range containers {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == secret {
				refs = append(refs, Reference{Container: c.Name, How: UseEnv, Keys: []string{e.ValueFrom.SecretKeyRef.Key}})
			}
		}
		for _, ef := range c.EnvFrom {
			if ef.SecretRef != nil && ef.SecretRef.Name == secret {
				refs = append(refs, Reference{Container: c.Name, How: UseEnvFrom})
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == secret {
			refs = append(refs, Reference{How: UseVolume, Volume: v.Name, Keys: itemKeys(v.Secret.Items)})
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.Secret != nil && src.Secret.Name == secret {
					refs = append(refs, Reference{How: UseProjected, Volume: v.Name, Keys: itemKeys(src.Secret.Items)})
				}
			}
		}
	}
	for _, ips := range spec.ImagePullSecrets {
		if ips.Name == secret {
			refs = append(refs, Reference{How: UseImagePullSecrets})
		}
	}
	return refs
}

func itemKeys(items []corev1.KeyToPath) []string {
	if len(items) == 0 {
		return nil
	}
	keys := make([]string, 0, len(items))
	for _, it := range items {
		keys = append(keys, it.Key)
	}
	return keys
}
