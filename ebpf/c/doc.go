// Package c holds the C tracker: tcpct.h (the hand-written step),
// tcpct_types.h and the headers gen/ generates from spec/ (zz_*.h). Its Go
// side runs the C step natively through cgo, converting fsm's values to the
// C structs and back field by field, so that the differential tests hold
// the C step to fsm.Machine.Step. The Go code lives beside the headers
// because the go command tracks changes only to files in a cgo package's
// own directory: a regenerated header then rebuilds what the tests run.
// Nothing outside this module's tests uses it; the main module needs no cgo.
package c
