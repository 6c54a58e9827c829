package consumers

import (
	"context"
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

func envKey(secret, key string) corev1.EnvVar {
	return corev1.EnvVar{Name: "V", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key}}}
}

func deployment(name string, spec corev1.PodSpec) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: spec}}}
}

func fixtures() []runtime.Object {
	owner := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: "1", Controller: ptr.To(true)}
	return []runtime.Object{
		deployment("env-auth", corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Env: []corev1.EnvVar{envKey("db", "AUTH")}}}}),
		deployment("env-job", corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Env: []corev1.EnvVar{envKey("db", "JOB")}}}}),
		deployment("envfrom-init", corev1.PodSpec{InitContainers: []corev1.Container{{Name: "migrate",
			EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}}}}}),
		deployment("other-secret", corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Env: []corev1.EnvVar{envKey("unrelated", "AUTH")}}}}),
		deployment("no-secret", corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}),
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "volume-items", Namespace: "ns"}, Spec: appsv1.StatefulSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db", Items: []corev1.KeyToPath{{Key: "AUTH", Path: "auth"}}}}}}}}}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "projected", Namespace: "ns"}, Spec: appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{{Name: "all", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}}}}}}}}}},
		&batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "ns"}, Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "job", Env: []corev1.EnvVar{envKey("db", "AUTH")}}}}}}}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bare", Namespace: "ns"}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "debug", Env: []corev1.EnvVar{envKey("db", "AUTH")}}}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "env-auth-abc", Namespace: "ns", OwnerReferences: []metav1.OwnerReference{owner}}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Env: []corev1.EnvVar{envKey("db", "AUTH")}}}}},
		deployment("pulls", corev1.PodSpec{ImagePullSecrets: []corev1.LocalObjectReference{{Name: "registry"}}, Containers: []corev1.Container{{Name: "app"}}}),
		deployment("other-ns", corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Env: []corev1.EnvVar{envKey("db", "AUTH")}}}}),
	}
}

func TestUsersOf(t *testing.T) {
	objs := fixtures()
	objs[len(objs)-1].(*appsv1.Deployment).Namespace = "elsewhere"
	client := fake.NewClientset(objs...)
	ix, err := NewIndex(context.Background(), client, "ns")
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		ref     string
		restart bool
	}
	tests := []struct {
		name   string
		secret string
		keys   []string
		want   []row
	}{
		{"rotating AUTH restarts its readers and reports the rest", "db", []string{"AUTH"}, []row{
			{"deployment/env-auth", true}, {"deployment/envfrom-init", true},
			{"statefulset/volume-items", true}, {"daemonset/projected", true},
			{"cronjob/nightly", false}, {"pod/bare", false},
		}},
		{"rotating JOB skips readers of other keys only", "db", []string{"JOB"}, []row{
			{"deployment/env-job", true}, {"deployment/envfrom-init", true}, {"daemonset/projected", true},
		}},
		{"no keys means the whole Secret", "db", nil, []row{
			{"deployment/env-auth", true}, {"deployment/env-job", true}, {"deployment/envfrom-init", true},
			{"statefulset/volume-items", true}, {"daemonset/projected", true},
			{"cronjob/nightly", false}, {"pod/bare", false},
		}},
		{"image pull secret: reported, not restarted", "registry", []string{".dockerconfigjson"}, []row{
			{"deployment/pulls", false},
		}},
		{"image pull secret: other key is no use", "registry", []string{"README"}, nil},
		{"unused Secret", "nobody-uses-me", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []row
			for _, w := range ix.UsersOf(tt.secret, tt.keys) {
				got = append(got, row{w.Ref(), w.Restart})
				if !w.Restart && w.Note == "" {
					t.Errorf("%s is not restarted and has no note saying why", w.Ref())
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestReferencesDescribeHow(t *testing.T) {
	spec := &corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "init", Env: []corev1.EnvVar{envKey("s", "A")}}},
		Containers: []corev1.Container{{Name: "app", EnvFrom: []corev1.EnvFromSource{
			{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}}}}},
		Volumes: []corev1.Volume{
			{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s", Items: []corev1.KeyToPath{{Key: "B"}, {Key: "C"}}}}},
			{Name: "p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}}}}}},
		},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "s"}},
	}
	want := []Reference{
		{Container: "init", How: UseEnv, Keys: []string{"A"}},
		{Container: "app", How: UseEnvFrom},
		{How: UseVolume, Volume: "v", Keys: []string{"B", "C"}},
		{How: UseProjected, Volume: "p"},
		{How: UseImagePullSecrets},
	}
	if got := References(spec, "s"); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}
