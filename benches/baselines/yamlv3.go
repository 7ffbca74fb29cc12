// Baseline of benches/speed.rs: the YAML layer under Go KRM functions (kyaml, Polaris `fix`):
// every document of stdin decoded to gopkg.in/yaml.v3 nodes and encoded back to stdout, nothing
// else. Built by scripts/bench-setup.sh from Debian's golang-gopkg-yaml.v3-dev.
package main

import (
	"bufio"
	"io"
	"os"

	"gopkg.in/yaml.v3"
)

func main() {
	dec := yaml.NewDecoder(bufio.NewReaderSize(os.Stdin, 1<<20))
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	for {
		var node yaml.Node
		if err := dec.Decode(&node); err != nil {
			if err == io.EOF {
				break
			}
			panic(err)
		}
		if err := enc.Encode(&node); err != nil {
			panic(err)
		}
	}
	if err := enc.Close(); err != nil {
		panic(err)
	}
	if err := w.Flush(); err != nil {
		panic(err)
	}
}
