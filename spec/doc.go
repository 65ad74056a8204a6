// Package spec is tcpct's single source of truth: the states, packet
// classes, transition cells, timeouts and knobs of each conntrack TCP
// profile, with the reason and RFC section behind every cell.
//
// A profile is a small text file (linux.spec, tutorial.spec) that a reviewer
// reads as tables: the transition grids look like the comments in the
// kernel's nf_conntrack_proto_tcp.c, one row per packet class and one
// column per old state. The files are embedded in the package; [Load]
// parses and validates one, and `go generate ./...` (gen/) turns every
// profile into the fsm/ tables and the docs/ pages.
//
// Why text and not Go literals: the grids must be reviewable side by side
// with the kernel source and the RFCs, diffable cell by cell, and loadable
// at run time (the mutation tests rewrite cells and load the result; a
// tcpct flag to load a spec file for experiments is planned), so errors
// must point at file:line, which a line-oriented format gives for free.
//
// # Grammar
//
// A line is a directive followed by fields separated by blanks; a field may
// be "quoted" to hold blanks; # starts a comment. Directives:
//
//	profile NAME                       the profile's name (linux, tutorial)
//	title "TEXT"                       one line for humans
//	describes "TEXT"                   the code or text the profile describes
//	knob NAME DEFAULT UNIT ALIASES "MEANING"
//	                                   a tunable; UNIT is bool, count or seconds;
//	                                   ALIASES is a comma list or -
//	state NAME ABBREV TIMEOUT-KNOB "RFC" "MEANING" [unused]
//	                                   states in column order; unused marks a
//	                                   state that must be unreachable
//	initial NAME                       the state of an entry before its first packet
//	cap NAME KNOB                      a timeout slot that is not a state (retrans, unack)
//	class NAME...                      packet classes in row order
//	classify CLASS FLAG... | -         first rule whose flags are all set wins;
//	                                   the last rule must be "-" (every packet)
//	flags-masked FLAG...               flags ignored by the validity check
//	flags-valid COMBO... | any         valid flag combinations, e.g. FIN|ACK
//	create CLASS [when KNOB]           first packets of CLASS may create an entry
//	feature NAME                       hand-written logic this profile uses
//	assured RULE                       after-reply or handshake-ack
//	seed-choice NAME "QUOTE" "CHOICE"  where the seed text overrides a kernel
//	table original|reply               then a header row "old ABBREV..." naming the columns
//	                                   and one row per class: CLASS CELL...;
//	                                   a cell is a state abbreviation, sIV
//	                                   (INVALID) or sIG (IGNORE)
//	why DIR CLASSES STATES "RFC" "REASON"
//	                                   explains cells: DIR is original, reply or
//	                                   *, CLASSES and STATES are comma lists or *;
//	                                   the first matching line explains a cell
//
// The loader rejects, with file:line and what is wrong: unknown directives
// and names, a cell defined twice or missing, a class or state without a
// row or column, a timeout that is not a positive number of seconds, a
// state unreachable from the initial one (unless marked unused), a cell no
// why line explains, and a why line that explains nothing.
package spec
