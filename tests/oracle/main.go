// Command oracle reads YAML documents the way Kubernetes does (sigs.k8s.io/yaml over go-yaml v2)
// and prints what each one means, for the differential test in tests/go_oracle.rs.
//
// Input (stdin): a JSON array of strings, each one YAML document.
// Output (stdout): a JSON array with one object per input document:
//
//	{"value": <the document as JSON>}             when yaml.YAMLToJSON reads it
//	{"error": "<message>"}                        when it does not
//	"strict_error": "<message>"                   added when yaml.YAMLToJSONStrict (kubectl's
//	                                              strict decoding: duplicate keys) rejects it
//
// Built by scripts/oracle-setup.sh from Debian's golang-k8s-sigs-yaml-dev
// (GOPATH=/usr/share/gocode GO111MODULE=off go build).
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"sigs.k8s.io/yaml"
)

type result struct {
	Value       json.RawMessage `json:"value,omitempty"`
	Error       *string         `json:"error,omitempty"`
	StrictError *string         `json:"strict_error,omitempty"`
}

func read(doc string) (r result) {
	defer func() {
		if p := recover(); p != nil {
			msg := fmt.Sprintf("panic: %v", p)
			r = result{Error: &msg}
		}
	}()
	j, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		msg := err.Error()
		return result{Error: &msg}
	}
	r.Value = j
	if _, err := yaml.YAMLToJSONStrict([]byte(doc)); err != nil {
		msg := err.Error()
		r.StrictError = &msg
	}
	return r
}

func main() {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "oracle:", err)
		os.Exit(2)
	}
	var docs []string
	if err := json.Unmarshal(in, &docs); err != nil {
		fmt.Fprintln(os.Stderr, "oracle: stdin must be a JSON array of strings:", err)
		os.Exit(2)
	}
	out := make([]result, len(docs))
	for i, d := range docs {
		out[i] = read(d)
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "oracle:", err)
		os.Exit(2)
	}
}
