package gen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/fdac824a/tcpct/spec"
)

// jsonField describes one field of the JSON form of a spec, as
// `tcpct spec -format json` prints it (cmd/tcpct/spec.go). The JSON Schema
// (spec.schema.json) and its prose (spec-schema.md) are both rendered from
// specSchema, so the two cannot disagree.
type jsonField struct {
	Name   string
	Type   string // string, integer, boolean, object, array
	Desc   string
	Enum   []string
	Items  *jsonField  // element of an array
	Fields []jsonField // properties of an object
}

func str(name, desc string, enum ...string) jsonField {
	return jsonField{Name: name, Type: "string", Desc: desc, Enum: enum}
}

func arrayOf(name, desc string, item jsonField) jsonField {
	return jsonField{Name: name, Type: "array", Desc: desc, Items: &item}
}

func object(fields ...jsonField) jsonField { return jsonField{Type: "object", Fields: fields} }

func specSchema() jsonField {
	return jsonField{Type: "object", Desc: "One tracker profile: its states, packet classes, knobs and every transition cell with its rationale.", Fields: []jsonField{
		str("profile", "the profile's name, e.g. linux or tutorial"),
		str("title", "one line for humans"),
		str("describes", "the code or text the profile describes"),
		str("initial", "name of the state an entry is in before its first packet (one of states[].name)"),
		arrayOf("knobs", "the tunables (sysctls) of the profile", object(
			str("name", "the knob's name, as the sysctl"),
			jsonField{Name: "default", Type: "integer", Desc: "default value (seconds for unit seconds, 0/1 for bool)"},
			str("unit", "how the value reads", spec.KnownUnits...),
			arrayOf("aliases", "other names accepted for the knob", jsonField{Type: "string"}),
			str("meaning", "what the knob does"),
		)),
		arrayOf("states", "the conntrack TCP states, in table column order", object(
			str("name", "as /proc/net/nf_conntrack prints it"),
			str("abbrev", "as the kernel's tables abbreviate it (sSS)"),
			str("timeout_knob", "the knob holding the state's timeout (one of knobs[].name)"),
			str("rfc", `RFC sections of the endpoint states it summarises, "793 §3.4; 9293 §3.5"`),
			str("meaning", "what the state says about the two endpoints"),
			jsonField{Name: "unused", Type: "boolean", Desc: "listed by the source but never entered"},
		)),
		arrayOf("classes", "the packet classes, in table row order", object(
			str("name", "the class's name"),
			str("flags", `the TCP flags that select the class, "SYN|ACK"; "" for the catch-all`),
		)),
		arrayOf("create", "classes whose first packet creates an entry", object(
			str("class", "one of classes[].name"),
			str("when", `the knob that must be non-zero; "" for always`),
		)),
		arrayOf("features", "hand-written logic of package fsm the profile uses", jsonField{Type: "string", Enum: spec.KnownFeatures}),
		str("assured", "the rule that sets [ASSURED]", spec.KnownAssured...),
		arrayOf("cells", "every transition cell, direction by direction, class by class, state by state", object(
			str("dir", "the packet's direction", spec.Original.String(), spec.Reply.String()),
			str("class", "one of classes[].name"),
			str("old", "the entry's state before the packet (one of states[].name)"),
			str("outcome", `the new state (one of states[].name), "INVALID" (sIV: nothing changes) or "IGNORE" (sIG: accepted, nothing changes)`),
			str("rfc", "RFC sections behind the cell"),
			str("why", "the spec's reason for the cell"),
		)),
	}}
}

func (f jsonField) schema() map[string]any {
	m := map[string]any{"type": f.Type}
	if f.Desc != "" {
		m["description"] = f.Desc
	}
	if len(f.Enum) > 0 {
		m["enum"] = f.Enum
	}
	if f.Items != nil {
		m["items"] = f.Items.schema()
	}
	if f.Type == "object" {
		props := map[string]any{}
		required := []string{}
		for _, p := range f.Fields {
			props[p.Name] = p.schema()
			required = append(required, p.Name)
		}
		m["properties"] = props
		m["required"] = required
		m["additionalProperties"] = false
	}
	return m
}

// SpecSchema is the JSON Schema (draft 2020-12) of `tcpct spec -format
// json`: every field is required and no other field is allowed.
func SpecSchema() []byte {
	m := specSchema().schema()
	m["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	m["$id"] = "spec.schema.json"
	m["title"] = "tcpct spec -format json"
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic(err) // maps of strings and slices always marshal
	}
	return append(b, '\n')
}

// SchemaMarkdown renders spec-schema.md, the schema as a table.
func SchemaMarkdown() []byte {
	var b bytes.Buffer
	b.WriteString(generatedHeader)
	fmt.Fprintf(&b, "# JSON form of a profile\n\n")
	fmt.Fprintf(&b, "`tcpct spec -profile NAME -format json` prints one profile as a single JSON object, so that other tools can consume the spec as data. ")
	fmt.Fprintf(&b, "The machine-readable schema is [spec.schema.json](spec.schema.json) (JSON Schema 2020-12). ")
	fmt.Fprintf(&b, "Every field is always present (lists may be empty) and no other field appears; a change to the output is a change to this schema. [Index](README.md)\n\n")
	fmt.Fprintf(&b, "| field | type | values | meaning |\n|---|---|---|---|\n")
	var walk func(prefix string, f jsonField)
	walk = func(prefix string, f jsonField) {
		for _, p := range f.Fields {
			path := prefix + p.Name
			typ, enum := p.Type, p.Enum
			if p.Type == "array" {
				typ = "array of " + p.Items.Type
				if len(enum) == 0 {
					enum = p.Items.Enum
				}
			}
			vals := ""
			if len(enum) > 0 {
				vals = "`" + strings.Join(enum, "`, `") + "`"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", path, typ, vals, esc(p.Desc))
			if p.Type == "object" {
				walk(path+".", p)
			}
			if p.Type == "array" && p.Items.Type == "object" {
				walk(path+"[].", *p.Items)
			}
		}
	}
	walk("", specSchema())
	return b.Bytes()
}
