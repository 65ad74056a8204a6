// Package gen turns the declarative spec (spec/) into the files the rest of
// the module commits: the flat transition tables of fsm/ as Go source, and
// the reference documentation (state tables, Mermaid and Graphviz
// diagrams, the RFC mapping tables). [Docs] renders the browsable
// reference of docs/ (an index, a page per profile with every cell's
// rationale and RFC links, the comparison, the JSON schema of
// `tcpct spec -format json`); `tcpct docs -o DIR` writes the same set
// elsewhere. Everything is a pure function of the
// spec text, so `go generate ./...` is reproducible and a test can check
// that the committed files are current.
//
// gen depends on spec only; it writes fsm's source without importing fsm,
// keeping the dependency order spec → gen → fsm.
package gen
