package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/fdac824a/tcpct/gen"
	"github.com/fdac824a/tcpct/spec"
)

const specUsage = `usage: tcpct spec [-profile linux|tutorial] [-format text|json|dot|mermaid]

Prints a tracker profile:
  text     the spec file itself (spec/<profile>.spec), the source of truth
  json     the profile as one JSON object (schema below)
  dot      a Graphviz digraph of the state machine
  mermaid  a Mermaid stateDiagram of the state machine

JSON schema (every field always present):
  profile, title, describes  strings
  initial                    name of the state an entry starts from
  knobs     [{name, default, unit ("bool"|"count"|"seconds"), aliases [string], meaning}]
  states    [{name, abbrev, timeout_knob, rfc, meaning, unused}]   in column order
  classes   [{name, flags}]  packet classes in row order; flags: the TCP flags
                             that select the class ("" for the catch-all)
  create    [{class, when}]  classes whose first packet creates an entry;
                             when: the knob that must be non-zero, "" = always
  features  [string]         hand-written logic the profile uses
  assured   string           the rule that sets [ASSURED]
  cells     [{dir ("original"|"reply"), class, old, outcome, rfc, why}]
            every transition: outcome is a state name, "INVALID" (sIV) or
            "IGNORE" (sIG); rfc and why are the spec's rationale for it

Exit status: 0 success; 1 usage error; 3 when the output cannot be
written.
`

type specJSON struct {
	Profile   string       `json:"profile"`
	Title     string       `json:"title"`
	Describes string       `json:"describes"`
	Initial   string       `json:"initial"`
	Knobs     []knobJSON   `json:"knobs"`
	States    []stateJSON  `json:"states"`
	Classes   []classJSON  `json:"classes"`
	Create    []createJSON `json:"create"`
	Features  []string     `json:"features"`
	Assured   string       `json:"assured"`
	Cells     []cellJSON   `json:"cells"`
}

type knobJSON struct {
	Name    string   `json:"name"`
	Default int64    `json:"default"`
	Unit    string   `json:"unit"`
	Aliases []string `json:"aliases"`
	Meaning string   `json:"meaning"`
}

type stateJSON struct {
	Name        string `json:"name"`
	Abbrev      string `json:"abbrev"`
	TimeoutKnob string `json:"timeout_knob"`
	RFC         string `json:"rfc"`
	Meaning     string `json:"meaning"`
	Unused      bool   `json:"unused"`
}

type classJSON struct {
	Name  string `json:"name"`
	Flags string `json:"flags"`
}

type createJSON struct {
	Class string `json:"class"`
	When  string `json:"when"`
}

type cellJSON struct {
	Dir     string `json:"dir"`
	Class   string `json:"class"`
	Old     string `json:"old"`
	Outcome string `json:"outcome"`
	RFC     string `json:"rfc"`
	Why     string `json:"why"`
}

func specToJSON(s *spec.Spec) specJSON {
	out := specJSON{Profile: s.Profile, Title: s.Title, Describes: s.Describes, Initial: s.States[s.Initial].Name,
		Features: append([]string{}, s.Features...), Assured: s.Assured,
		Knobs: []knobJSON{}, States: []stateJSON{}, Classes: []classJSON{}, Create: []createJSON{}, Cells: []cellJSON{}}
	for _, k := range s.Knobs {
		out.Knobs = append(out.Knobs, knobJSON{k.Name, k.Default, k.Unit, append([]string{}, k.Aliases...), k.Meaning})
	}
	for _, st := range s.States {
		out.States = append(out.States, stateJSON{st.Name, st.Abbrev, st.Timeout, st.RFC, st.Meaning, st.Unused})
	}
	for i, c := range s.Classes {
		cj := classJSON{Name: c}
		for _, r := range s.Classify {
			if r.Class == i {
				if r.Flags != 0 {
					cj.Flags = r.Flags.String()
				}
				break
			}
		}
		out.Classes = append(out.Classes, cj)
	}
	for _, c := range s.Creates {
		out.Create = append(out.Create, createJSON{s.Classes[c.Class], c.When})
	}
	for d := range s.Table {
		for c, row := range s.Table[d] {
			for st, cell := range row {
				why := s.Whys[cell.Why]
				out.Cells = append(out.Cells, cellJSON{spec.Dir(d).String(), s.Classes[c], s.States[st].Name,
					s.OutcomeName(cell.Outcome), why.RFC, why.Reason})
			}
		}
	}
	return out
}

func specCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("spec", flag.ContinueOnError)
	profile := fs.String("profile", "linux", "profile: linux or tutorial")
	format := fs.String("format", "text", "`format`: text, json, dot or mermaid")
	pos, code, done := parseFlags(fs, args, specUsage, stdout, stderr)
	if done {
		return code
	}
	if len(pos) != 0 {
		return usageErr(stderr, "spec", fmt.Errorf("unexpected argument %q", pos[0]))
	}
	if *profile != "linux" && *profile != "tutorial" {
		return usageErr(stderr, "spec", fmt.Errorf("-profile: unknown profile %q (want linux or tutorial)", *profile))
	}
	s, err := spec.Load(*profile)
	if err != nil {
		fmt.Fprintf(stderr, "tcpct spec: %v\n", err)
		return exitInput
	}
	switch *format {
	case "text":
		src, err := spec.Source(*profile)
		if err != nil {
			fmt.Fprintf(stderr, "tcpct spec: %v\n", err)
			return exitInput
		}
		_, err = stdout.Write(src)
		return specWritten(err, stderr)
	case "json":
		b, err := json.MarshalIndent(specToJSON(s), "", "  ")
		if err != nil {
			fmt.Fprintf(stderr, "tcpct spec: %v\n", err)
			return exitInput
		}
		_, err = stdout.Write(append(b, '\n'))
		return specWritten(err, stderr)
	case "dot":
		_, err := stdout.Write(gen.Dot(s))
		return specWritten(err, stderr)
	case "mermaid":
		_, err := io.WriteString(stdout, gen.Mermaid(s))
		return specWritten(err, stderr)
	default:
		return usageErr(stderr, "spec", fmt.Errorf("-format: unknown format %q (want text, json, dot or mermaid)", *format))
	}
}

// specWritten is spec's status once its output is written: exitOutput, with
// a message, when the write failed.
func specWritten(err error, stderr io.Writer) int {
	if err != nil {
		return outputFailed(stderr, "spec", err)
	}
	return exitOK
}
