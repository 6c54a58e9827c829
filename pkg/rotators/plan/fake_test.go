package plan

import (
	"errors"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// enforceResourceVersion makes the fake clientset treat ConfigMaps as the
// API server does and client-go's fake does not: a create gets a
// resourceVersion, an update or a delete whose resourceVersion is not the
// stored one is a Conflict, and every write bumps it.
func enforceResourceVersion(kc *fake.Clientset) {
	var mu sync.Mutex
	version := 100
	gvr := corev1.SchemeGroupVersion.WithResource("configmaps")
	stored := func(ns, name string) (*corev1.ConfigMap, error) {
		obj, err := kc.Tracker().Get(gvr, ns, name)
		if err != nil {
			return nil, err
		}
		return obj.(*corev1.ConfigMap), nil
	}
	conflict := func(name string) error {
		return apierrors.NewConflict(gvr.GroupResource(), name, errors.New("the object has been modified; please apply your changes to the latest version and try again"))
	}
	kc.PrependReactor("create", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		cm := a.(k8stesting.CreateAction).GetObject().(*corev1.ConfigMap).DeepCopy()
		version++
		cm.ResourceVersion = strconv.Itoa(version)
		if err := kc.Tracker().Create(gvr, cm, a.GetNamespace()); err != nil {
			return true, nil, err
		}
		return true, cm, nil
	})
	kc.PrependReactor("update", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		cm := a.(k8stesting.UpdateAction).GetObject().(*corev1.ConfigMap).DeepCopy()
		cur, err := stored(a.GetNamespace(), cm.Name)
		if err != nil {
			return true, nil, err
		}
		if cm.ResourceVersion != cur.ResourceVersion {
			return true, nil, conflict(cm.Name)
		}
		version++
		cm.ResourceVersion = strconv.Itoa(version)
		if err := kc.Tracker().Update(gvr, cm, a.GetNamespace()); err != nil {
			return true, nil, err
		}
		return true, cm, nil
	})
	kc.PrependReactor("delete", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		d := a.(k8stesting.DeleteAction)
		cur, err := stored(a.GetNamespace(), d.GetName())
		if err != nil {
			return true, nil, err
		}
		if pre := d.GetDeleteOptions().Preconditions; pre != nil && pre.ResourceVersion != nil && *pre.ResourceVersion != cur.ResourceVersion {
			return true, nil, conflict(d.GetName())
		}
		return true, nil, kc.Tracker().Delete(gvr, a.GetNamespace(), d.GetName())
	})
}
