package v1alpha1

// Use says how a workload reads a Secret.
type Use string

// The ways a pod spec can reference a Secret.
const (
	UseEnv              Use = "env"              // env[].valueFrom.secretKeyRef: one key
	UseEnvFrom          Use = "envFrom"          // envFrom[].secretRef: every key
	UseVolume           Use = "volume"           // volumes[].secret: every key, or the items listed
	UseProjected        Use = "projected"        // volumes[].projected.sources[].secret
	UseImagePullSecrets Use = "imagePullSecrets" // pulls of new pods only
)

// Kinds of workloads searched.
const (
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
	KindDaemonSet   = "DaemonSet"
	KindCronJob     = "CronJob"
	KindPod         = "Pod"
)

// Reference is one place in a pod spec that reads the Secret.
type Reference struct {
	// Container is the (init) container, empty for pod-level references.
	Container string `json:"container,omitempty"`
	// How the Secret is read.
	How Use `json:"how"`
	// Keys read, when the reference names keys; empty means every key.
	Keys []string `json:"keys,omitempty"`
	// Volume is the volume name for volume and projected references.
	Volume string `json:"volume,omitempty"`
}

// Workload is one workload that reads a Secret.
type Workload struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// References are how it reads the Secret.
	References []Reference `json:"references"`
	// Restart is true when a rollout restart is needed and possible
	// (Deployment, StatefulSet, DaemonSet reading a changed key at run time).
	Restart bool `json:"restart"`
	// Note says what happens otherwise (CronJob, bare Pod, image pulls).
	Note string `json:"note,omitempty"`
}

// Ref returns kind/name, as kubectl prints it (deployment/web).
func (w Workload) Ref() string {
	return lowerKind(w.Kind) + "/" + w.Name
}

func lowerKind(k string) string {
	switch k {
	case KindDeployment:
		return "deployment"
	case KindStatefulSet:
		return "statefulset"
	case KindDaemonSet:
		return "daemonset"
	case KindCronJob:
		return "cronjob"
	case KindPod:
		return "pod"
	}
	return k
}

// Unhealthy is a workload whose rollout did not complete.
type Unhealthy struct {
	Workload Workload `json:"workload"`
	// Status is the last status line the rollout showed.
	Status string `json:"status"`
	// Reason is why waiting stopped.
	Reason string `json:"reason"`
}
