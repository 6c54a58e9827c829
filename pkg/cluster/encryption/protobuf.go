package encryption

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"path"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Media types of kube-apiserver's protobuf encoding
// (k8s.io/apimachinery pkg/runtime/serializer/protobuf/protobuf.go).
const (
	protobufType = "application/vnd.kubernetes.protobuf"
	// protobufOrJSON asks for protobuf and accepts JSON from a resource
	// served only in JSON (a custom resource).
	protobufOrJSON = protobufType + ", application/json"
	// putAnswer asks kube-apiserver to answer a write with the object's
	// metadata only: nothing of its content comes back.
	putAnswer = protobufType + ";as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
)

// protobufMagic starts every protobuf-encoded object: "k8s" and a zero
// byte, then a runtime.Unknown holding the apiVersion, the kind and the
// object's own bytes (pkg/runtime/serializer/protobuf/protobuf.go,
// protoEncodingPrefix).
var protobufMagic = []byte{0x6b, 0x38, 0x73, 0x00}

// access picks how a resource is listed and stored again: a resource
// kube-apiserver serves in protobuf is listed in protobuf and each object
// is written back by a PUT of its listed bytes (restAccess: neither side
// decodes or patches JSON); any other (custom resources, or no REST
// client) goes through the metadata client's precondition patch.
func (o *RewriteOptions) access(ctx context.Context, res Resource) (access, error) {
	if o.REST == nil {
		return o.metadataAccess(res), nil
	}
	ok, err := o.servesProtobuf(ctx, res)
	if err != nil {
		return access{}, fmt.Errorf("listing %s: %w", res, err)
	}
	if !ok {
		return o.metadataAccess(res), nil
	}
	return o.restAccess(res), nil
}

// apiPath is the path of a resource's collection (namespace "": all
// namespaces) or, with a name, of one object.
func apiPath(res Resource, namespace, name string) string {
	p := []string{"/api", res.GVR.Version}
	if res.GVR.Group != "" {
		p = []string{"/apis", res.GVR.Group, res.GVR.Version}
	}
	if namespace != "" {
		p = append(p, "namespaces", namespace)
	}
	p = append(p, res.GVR.Resource)
	if name != "" {
		p = append(p, name)
	}
	return path.Join(p...)
}

// servesProtobuf lists one object of res asking for protobuf or JSON and
// says which one came back.
func (o *RewriteOptions) servesProtobuf(ctx context.Context, res Resource) (bool, error) {
	var ct string
	err := o.REST.Get().AbsPath(apiPath(res, "", "")).Param("limit", "1").
		SetHeader("Accept", protobufOrJSON).Do(ctx).ContentType(&ct).Error()
	if err != nil {
		return false, err
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == protobufType, nil
}

// restAccess lists res in protobuf and stores each object again by a PUT
// of the bytes it was listed with, so that kube-apiserver decodes the
// object it stored (the same content, at the listed resourceVersion),
// finds it unchanged and, when it was read with a key that is not the
// first, writes it with the first key.
//
// The PUT is conditional twice over (k8s.io/apiserver v0.36):
//   - pkg/registry/generic/registry/store.go Update: a resourceVersion
//     other than the stored one (the object was written since it was
//     listed) is a 409 Conflict.
//   - pkg/registry/rest/update.go defaultUpdatedObjectInfo.Preconditions:
//     the body's uid is a precondition, so an object deleted since it was
//     listed is not created again, even for a resource that allows create
//     on update: the storage's precondition check fails
//     (storage.Preconditions.Check, an InvalidObj error answered as 409);
//     a resource that does not allow it answers 404.
func (o *RewriteOptions) restAccess(res Resource) access {
	var apiVersion, kind string
	return access{
		list: func(ctx context.Context, opts metav1.ListOptions) ([]objectRef, string, error) {
			var ct string
			req := o.REST.Get().AbsPath(apiPath(res, "", "")).SetHeader("Accept", protobufType).
				Param("limit", strconv.FormatInt(opts.Limit, 10))
			if opts.Continue != "" {
				req = req.Param("continue", opts.Continue)
			}
			result := req.Do(ctx).ContentType(&ct)
			if err := result.Error(); err != nil {
				return nil, "", err
			}
			body, _ := result.Raw()
			l, err := parseList(body)
			if err != nil {
				return nil, "", fmt.Errorf("reading the protobuf list (%s): %w", ct, err)
			}
			apiVersion, kind = l.apiVersion, l.kind
			return l.items, l.cont, nil
		},
		store: func(ctx context.Context, ref *objectRef) error {
			body, err := envelope(apiVersion, kind, ref.raw)
			if err != nil {
				return err
			}
			return o.REST.Put().AbsPath(apiPath(res, ref.namespace, ref.name)).
				SetHeader("Content-Type", protobufType).SetHeader("Accept", putAnswer).
				Body(body).Do(ctx).Error()
		},
	}
}

// protobufList is a list page read from its protobuf encoding: the items'
// apiVersion and kind, the continue token, and each item's place and
// bytes.
type protobufList struct {
	apiVersion, kind, cont string
	items                  []objectRef
}

// parseList reads a protobuf-encoded list without decoding its items'
// content: every Kubernetes list message holds its ListMeta in field 1
// and its items in field 2 (the generated.proto of each API group), and
// every object its ObjectMeta in field 1.
func parseList(body []byte) (protobufList, error) {
	var l protobufList
	u, err := unwrap(body)
	if err != nil {
		return l, err
	}
	kind, ok := strings.CutSuffix(u.Kind, "List")
	if !ok || kind == "" {
		return l, fmt.Errorf("kind %q is not a list", u.Kind)
	}
	l.apiVersion, l.kind = u.APIVersion, kind
	err = fields(u.Raw, func(num protowire.Number, v []byte) error {
		switch num {
		case 1:
			var lm metav1.ListMeta
			if err := lm.Unmarshal(v); err != nil {
				return fmt.Errorf("list metadata: %w", err)
			}
			l.cont = lm.Continue
		case 2:
			ref := objectRef{raw: v}
			err := fields(v, func(num protowire.Number, v []byte) error {
				if num != 1 {
					return nil
				}
				var m metav1.ObjectMeta
				if err := m.Unmarshal(v); err != nil {
					return fmt.Errorf("item metadata: %w", err)
				}
				ref.namespace, ref.name, ref.resourceVersion = m.Namespace, m.Name, m.ResourceVersion
				return nil
			})
			if err != nil {
				return err
			}
			l.items = append(l.items, ref)
		}
		return nil
	})
	return l, err
}

// unwrap reads the runtime.Unknown after the magic prefix.
func unwrap(body []byte) (*runtime.Unknown, error) {
	rest, ok := bytes.CutPrefix(body, protobufMagic)
	if !ok {
		return nil, errors.New("no protobuf prefix")
	}
	u := &runtime.Unknown{}
	if err := u.Unmarshal(rest); err != nil {
		return nil, err
	}
	return u, nil
}

// envelope is the body of a PUT of one object: the magic prefix and a
// runtime.Unknown with the object's apiVersion, kind and bytes.
func envelope(apiVersion, kind string, raw []byte) ([]byte, error) {
	u := runtime.Unknown{TypeMeta: runtime.TypeMeta{APIVersion: apiVersion, Kind: kind}, Raw: raw}
	b := make([]byte, len(protobufMagic)+u.Size())
	copy(b, protobufMagic)
	if _, err := u.MarshalTo(b[len(protobufMagic):]); err != nil {
		return nil, fmt.Errorf("encoding the object: %w", err)
	}
	return b, nil
}

// fields calls f with each length-delimited field of a protobuf message
// (the only kind a list or an object's metadata is held in) and skips the
// others.
func fields(b []byte, f func(protowire.Number, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, v); err != nil {
			return err
		}
	}
	return nil
}
