package main

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func envRef(secret, key string) corev1.EnvVar {
	return corev1.EnvVar{Name: "V", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key}}}
}

func TestReads(t *testing.T) {
	items := func(keys ...string) []corev1.KeyToPath {
		var out []corev1.KeyToPath
		for _, k := range keys {
			out = append(out, corev1.KeyToPath{Key: k, Path: k})
		}
		return out
	}
	secretVol := func(name string, it []corev1.KeyToPath) corev1.Volume {
		return corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: name, Items: it}}}
	}
	projected := func(name string, it []corev1.KeyToPath) corev1.Volume {
		return corev1.Volume{Name: "p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: name}}},
			{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Items: it}},
		}}}}
	}
	for _, tc := range []struct {
		name string
		spec corev1.PodSpec
		want bool
	}{
		{"nothing", corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}}, false},
		{"env key", corev1.PodSpec{Containers: []corev1.Container{{Env: []corev1.EnvVar{envRef("s", "k")}}}}, true},
		{"env other key", corev1.PodSpec{Containers: []corev1.Container{{Env: []corev1.EnvVar{envRef("s", "other")}}}}, false},
		{"env other secret", corev1.PodSpec{Containers: []corev1.Container{{Env: []corev1.EnvVar{envRef("t", "k")}}}}, false},
		{"env plain value", corev1.PodSpec{Containers: []corev1.Container{{Env: []corev1.EnvVar{{Name: "s", Value: "k"}}}}}, false},
		{"init container env", corev1.PodSpec{InitContainers: []corev1.Container{{Env: []corev1.EnvVar{envRef("s", "k")}}}}, true},
		{"envFrom", corev1.PodSpec{Containers: []corev1.Container{{EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}}}}}}, true},
		{"envFrom configmap of that name", corev1.PodSpec{Containers: []corev1.Container{{EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}}}}}}, false},
		{"volume, all keys", corev1.PodSpec{Volumes: []corev1.Volume{secretVol("s", nil)}}, true},
		{"volume, item for key", corev1.PodSpec{Volumes: []corev1.Volume{secretVol("s", items("x", "k"))}}, true},
		{"volume, items without key", corev1.PodSpec{Volumes: []corev1.Volume{secretVol("s", items("x"))}}, false},
		{"volume of another secret", corev1.PodSpec{Volumes: []corev1.Volume{secretVol("t", nil)}}, false},
		{"projected, all keys", corev1.PodSpec{Volumes: []corev1.Volume{projected("s", nil)}}, true},
		{"projected, items without key", corev1.PodSpec{Volumes: []corev1.Volume{projected("s", items("x"))}}, false},
		{"projected, other secret", corev1.PodSpec{Volumes: []corev1.Volume{projected("t", nil)}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := reads(&tc.spec, "s", "k"); got != tc.want {
				t.Errorf("reads(s, k) = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestConsumersOf(t *testing.T) {
	spec := func(env ...corev1.EnvVar) *corev1.PodSpec {
		return &corev1.PodSpec{Containers: []corev1.Container{{Env: env}}}
	}
	ws := []workload{
		{Kind: kindDeployment, Name: "a", Spec: spec(envRef("s1", "k"))},
		{Kind: kindStatefulSet, Name: "b", Spec: spec(envRef("s1", "k"), envRef("s2", "k"))},
		{Kind: kindDaemonSet, Name: "c", Spec: spec(envRef("s3", "other"))},
	}
	for _, tc := range []struct {
		name    string
		secrets []string
		want    map[string][]int
	}{
		{"none", nil, map[string][]int{}},
		{"shared reader", []string{"s1", "s2"}, map[string][]int{"s1": {0, 1}, "s2": {1}}},
		{"other key only", []string{"s3"}, map[string][]int{}},
		{"unknown secret", []string{"nope", "s2"}, map[string][]int{"s2": {1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := consumersOf(tc.secrets, "k", ws); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("consumersOf(%v) = %v, want %v", tc.secrets, got, tc.want)
			}
		})
	}
}

func TestRequestCountsString(t *testing.T) {
	var c requestCounts
	c.get.Add(5)
	c.patch.Add(400)
	c.post.Add(1)
	got := c.String()
	want := "406 (GET 5, POST 1, PATCH 400), writes 401"
	if got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if strings.Contains(got, "DELETE") {
		t.Errorf("String() = %q names a method with no requests", got)
	}
}
