package kube

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// Lister and Watcher are the List and Watch methods of any client
// (typed or dynamic) for one resource in one namespace.
type (
	Lister  func(context.Context, metav1.ListOptions) (runtime.Object, error)
	Watcher func(context.Context, metav1.ListOptions) (watch.Interface, error)
)

// SingleObjectListWatch lists and watches the one object called name, as
// `kubectl rollout status` does. client is the client behind list and
// watch: it tells the reflector whether the server can stream the initial
// list (watch-list); fakes and some proxies cannot.
func SingleObjectListWatch(name string, list Lister, watchFn Watcher, client any) cache.ListerWatcher {
	selector := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = selector
			return list(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = selector
			return watchFn(ctx, o)
		},
	}
	return cache.ToListWatcherWithWatchListSemantics(lw, client)
}

// NamespaceListWatch lists and watches every object of one resource in
// one namespace (list and watch are namespaced already), for a watch
// shared by many waiters; client is as for SingleObjectListWatch.
func NamespaceListWatch(list Lister, watchFn Watcher, client any) cache.ListerWatcher {
	lw := &cache.ListWatch{
		ListWithContextFunc:  func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return list(ctx, o) },
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) { return watchFn(ctx, o) },
	}
	return cache.ToListWatcherWithWatchListSemantics(lw, client)
}
