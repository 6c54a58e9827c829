package plan

import (
	"bytes"
	"context"
	"fmt"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/consumers"
	"io"
	"sort"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/delivery"
	"github.com/kube-rotate/kube-rotate/pkg/model/changes"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

// FinishOptions of the finish step of one Secret item.
type FinishOptions struct {
	Namespace, Item, Secret string
	Pending                 *Pending
	CreateKeys              bool
	// Restart restarts the Secret's consumers and waits for them; false
	// when the plan restarts every workload once at the end (coalesced).
	Restart     bool
	Timeout     time.Duration
	PreviousTTL time.Duration
	// ReplacePrevious is the plan's spec.replacePrevious.
	ReplacePrevious bool
	// Index, if set, is the namespace's workloads as the run listed them
	// once, for every item (nil: listed for this one).
	Index    *consumers.Index
	By       string
	Progress io.Writer
	// Deliveries hand hashed tokens to other Secrets, before the hashes
	// are put in place.
	Deliveries []Delivery
}

// Delivery is a token to write to a key of another Secret.
type Delivery struct {
	Secret, Key string
	Token       []byte
}

// FinishSecret is the finish step: the pending values move into place
// through secret.Rotate (the old values kept in NAME-previous, written
// with resourceVersion preconditions), then NAME-pending is deleted. A
// re-run after a crash between the two finds the values in place and only
// deletes the companion: it never rotates twice, which would overwrite the
// previous values with the new ones.
func FinishSecret(ctx context.Context, c secret.Clients, o FinishOptions) (*secret.Result, error) {
	secrets := c.Kube.CoreV1().Secrets(o.Namespace)
	live, err := secrets.Get(ctx, o.Secret, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("item %s: reading secret/%s: %w", o.Item, o.Secret, err)
	}
	keys := make([]string, 0, len(o.Pending.Values))
	for k := range o.Pending.Values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	inPlace := true
	for _, k := range keys {
		if !bytes.Equal(live.Data[k], o.Pending.Values[k]) {
			inPlace = false
		}
	}
	var res *secret.Result
	if !inPlace {
		for _, d := range o.Deliveries {
			// A token delivered by a run that stopped is there already and
			// left as it is.
			if _, err := delivery.Deliver(ctx, c.Kube, delivery.Target{Namespace: o.Namespace, Secret: d.Secret, Key: d.Key}, d.Token); err != nil {
				return nil, fmt.Errorf("item %s: %w", o.Item, err)
			}
		}
		var cs []secret.Change
		for _, k := range keys {
			cs = append(cs, changes.Fixed(k, "plan item "+o.Item, o.Pending.Values[k]))
		}
		progress := o.Progress
		if progress == nil {
			progress = io.Discard
		}
		res, err = secret.Rotate(ctx, c, secret.Options{Namespace: o.Namespace, Secrets: []string{o.Secret}, Changes: cs,
			CreateKeys: o.CreateKeys, KeepPrevious: true, PreviousTTL: o.PreviousTTL, ReplacePrevious: o.ReplacePrevious, Restart: o.Restart, Timeout: o.Timeout,
			Index: o.Index, DryRun: secret.DryRunNone, By: o.By, Progress: progress})
		if err != nil {
			return res, fmt.Errorf("item %s: %w", o.Item, err)
		}
	}
	if err := secrets.Delete(ctx, PendingName(o.Secret), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return res, fmt.Errorf("item %s: deleting secret/%s: %w", o.Item, PendingName(o.Secret), err)
	}
	return res, nil
}
