package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is kube-rotate's API group, declared once.
const GroupName = "rotate.kube-rotate.io"

// Version of the API in this package.
const Version = "v1alpha1"

// APIVersion is the apiVersion of every document and record of this
// package.
const APIVersion = GroupName + "/" + Version

// SchemeGroupVersion is the group and version, as apimachinery spells it.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: Version}

// Kinds of this package.
const (
	// KindRotationPlan is a plan of rotations (`kubectl rotate apply -f`).
	KindRotationPlan = "RotationPlan"
	// KindRotationPolicy says how old each kind of credential may get.
	KindRotationPolicy = "RotationPolicy"
	// KindSecretRotation records a `kubectl rotate secret` run.
	KindSecretRotation = "SecretRotation"
	// KindSecretRotationFinish records a `kubectl rotate finish` run.
	KindSecretRotationFinish = "SecretRotationFinish"
	// KindSecretRotationHistory is a Secret's history.
	KindSecretRotationHistory = "SecretRotationHistory"
	// KindRotationReport is a check of every credential's age.
	KindRotationReport = "RotationReport"
	// KindKeySet is a JSON Web Key Set's keys and their states.
	KindKeySet = "KeySet"
	// KindKeysetRotationStatus is where a kOps cluster's keyset rotation
	// stands.
	KindKeysetRotationStatus = "KeysetRotationStatus"
	// KindEncryptionRotationStatus is where an encryption-at-rest key
	// rotation stands.
	KindEncryptionRotationStatus = "EncryptionRotationStatus"
	// KindRotationPlanRun is a plan run's journal.
	KindRotationPlanRun = "RotationPlanRun"
)

// TypeMeta returns the TypeMeta of a kind of this package.
func TypeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: APIVersion, Kind: kind}
}
