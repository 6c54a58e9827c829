package actionrun

import (
	"maps"
	"testing"
)

func TestParseOutputs(t *testing.T) {
	got, err := parseOutputs("overdue_count=2\nclusters<<EOF_1\n{\"prod\": {}}\nsecond line\nEOF_1\n\nempty=\n")
	want := map[string]string{"overdue_count": "2", "clusters": "{\"prod\": {}}\nsecond line", "empty": ""}
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("parseOutputs = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{"report_json<<EOF\nx\n", "no equals sign\n"} {
		if got, err := parseOutputs(bad); err == nil {
			t.Errorf("parseOutputs(%q) = %q, want an error", bad, got)
		}
	}
}

func TestAnnotation(t *testing.T) {
	fields, msg := Annotation("::error title=kube-rotate,file=.github/policy.yaml,line=6::policy: unknown field")
	if want := map[string]string{"title": "kube-rotate", "file": ".github/policy.yaml", "line": "6"}; !maps.Equal(fields, want) || msg != "policy: unknown field" {
		t.Errorf("fields %q, message %q", fields, msg)
	}
	if fields, msg := Annotation("::warning::no fields"); len(fields) != 0 || fields == nil || msg != "no fields" {
		t.Errorf("no fields: %q, %q", fields, msg)
	}
	if fields, _ := Annotation("plain log line"); fields != nil {
		t.Errorf("a log line parsed as an annotation: %q", fields)
	}
}
